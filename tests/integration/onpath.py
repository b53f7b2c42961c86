#!/usr/bin/env python3
"""An on-path relay between a `vfmig send` and a `vfmig recv`, for tests.

    onpath.py --listen 127.0.0.2:P --to 127.0.0.1:P --dst-pid PID
              --capture FILE [--flip OFFSET]

The source is started with `--to 127.0.0.2:P`. Every control connection is
relayed to the receiver. The data streams go to the port the receiver names
in its (sealed) XPORT message, on the host of the source's --to, so they come
here too: before a chunk from the receiver is passed on, the relay looks up
the receiver's new listening ports (ss -ltnp) and relays 127.0.0.2:Q to
127.0.0.1:Q. What the source sends on the data streams is written to FILE (at
most 16 MiB); with --flip, the byte at OFFSET of the first data stream is
inverted on its way to the receiver, as an attacker on the path would.
Prints "ready" once it listens; runs until killed.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import threading

CAP_MAX = 16 << 20


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.relayed = set()
        self.cap = open(args.capture, "wb")
        self.cap_len = 0
        self.first_data = None


def split(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def listeners(pid):
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    ports = set()
    for line in out.splitlines():
        if f"pid={pid}," not in line:
            continue
        m = re.search(r"\s(\S+):(\d+)\s+\S+:\*", line)
        if m:
            ports.add(int(m.group(2)))
    return ports


def pump(src, dst, st, on_chunk=None):
    pos = 0
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            if on_chunk:
                b = on_chunk(pos, b)
            pos += len(b)
            dst.sendall(b)
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def relay_port(st, port, data):
    lhost, _ = split(st.args.listen)
    thost, _ = split(st.args.to)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((lhost, port))
    ls.listen(64)

    def serve():
        while True:
            c, _ = ls.accept()
            try:
                u = socket.create_connection((thost, port))
            except OSError:
                c.close()
                continue
            up = data_filter(st, c) if data else None
            down = control_filter(st) if not data else None
            threading.Thread(target=pump, args=(c, u, st, up), daemon=True).start()
            threading.Thread(target=pump, args=(u, c, st, down), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()


def data_filter(st, conn):
    with st.lock:
        first = st.first_data is None
        if first:
            st.first_data = conn

    def f(pos, b):
        with st.lock:
            if st.cap_len < CAP_MAX:
                st.cap.write(b[: CAP_MAX - st.cap_len])
                st.cap_len += min(len(b), CAP_MAX - st.cap_len)
                st.cap.flush()
        off = st.args.flip
        if first and off is not None and pos <= off < pos + len(b):
            b = bytearray(b)
            b[off - pos] ^= 0xFF
            b = bytes(b)
            print(f"flipped byte {off} of the first data stream", flush=True)
        return b

    return f


def control_filter(st):
    def f(pos, b):
        # The receiver listens for the data streams before it says where:
        # relay its new ports before the source can learn them.
        for p in listeners(st.args.dst_pid) - st.relayed:
            st.relayed.add(p)
            relay_port(st, p, True)
        return b

    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--dst-pid", required=True, type=int)
    ap.add_argument("--capture", required=True)
    ap.add_argument("--flip", type=int)
    args = ap.parse_args()
    st = State(args)
    _, cport = split(args.to)
    st.relayed = listeners(args.dst_pid)
    if cport not in st.relayed:
        sys.exit(f"onpath: pid {args.dst_pid} does not listen on {cport}")
    relay_port(st, split(args.listen)[1], False)
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
