#!/usr/bin/env python3
"""Hostile pre-auth traffic against a `vfmig recv` port.

usage: hostile.py PORT kinds      garbage, a forged ABORT, silence, a byte a
                                  second, an HTTP request, a bad frame length
       hostile.py PORT flood N    N connections, each garbage then closed
       hostile.py PORT hold N S   N connections at once, silent, held S s
"""
import os
import socket
import sys
import threading
import time

PORT = int(sys.argv[1])
# The 18-byte ABORT a peer could forge before authenticating.
ABORT = b"VFMH\x05\x00\x00\x00\x06\x00\x00\x00\x01\x00\x02\x00\x02\x00"


def conn():
    return socket.create_connection(("127.0.0.1", PORT), timeout=5)


def send_close(data):
    try:
        c = conn()
        c.sendall(data)
        time.sleep(0.05)
        c.close()
    except OSError:
        pass


def trickle(seconds):
    try:
        c = conn()
        for b in b"VFMH\x01\x00\x00\x00"[:seconds]:
            c.send(bytes([b]))
            time.sleep(1)
        c.close()
    except OSError:
        pass


def silent(seconds):
    try:
        c = conn()
        time.sleep(seconds)
        c.close()
    except OSError:
        pass


def kinds():
    ts = [threading.Thread(target=trickle, args=(4,)),
          threading.Thread(target=silent, args=(3,))]
    for t in ts:
        t.start()
    send_close(os.urandom(100000))
    send_close(ABORT)
    send_close(ABORT * 4)
    send_close(b"GET / HTTP/1.0\r\n\r\n")
    send_close(b"VFMH\x01\x00\x00\x00\xff\xff\xff\x7f")
    for t in ts:
        t.join()


def flood(n):
    for _ in range(n):
        try:
            c = conn()
            c.sendall(os.urandom(64))
            c.close()
        except OSError:
            pass


def hold(n, seconds):
    socks = []
    for _ in range(n):
        try:
            socks.append(conn())
        except OSError:
            pass
    time.sleep(seconds)
    for s in socks:
        s.close()
    print("held %d connections for %s s" % (len(socks), seconds))


if sys.argv[2] == "kinds":
    kinds()
elif sys.argv[2] == "flood":
    flood(int(sys.argv[3]))
elif sys.argv[2] == "hold":
    hold(int(sys.argv[3]), float(sys.argv[4]))
