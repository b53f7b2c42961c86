#!/usr/bin/env python3
"""The agents' sd_notify(3) messages, as systemd's Type=notify units receive
them: NOTIFY_SOCKET points at a datagram socket this test owns.

- recv: READY=1 once it listens (the port accepts a connection right then),
  STATUS= saying so, STOPPING=1 at exit.
- send: READY=1 once connected and authenticated, STATUS= with the phase and
  the once-a-second progress (percent, MiB, MB/s) during pre-copy, STATUS=
  with the result, STOPPING=1 at exit.
- send to a port where nobody listens: no READY=1 (systemd then fails the
  start), STOPPING=1 still.

    test_notify.py VFMIG
"""
import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

vfmig = sys.argv[1]
work = tempfile.mkdtemp(prefix="vfm-notify.")
procs = []
atexit.register(shutil.rmtree, work, True)


def fail(msg, *socks):
    print("FAIL:", msg)
    for s in socks:
        print("  %s got: %r" % (s.name, s.msgs))
    for p in procs:
        if p.poll() is None:
            p.kill()
    sys.exit(1)


class Notify:
    """A NOTIFY_SOCKET: a bound AF_UNIX datagram socket and what came."""

    def __init__(self, name):
        self.name = name
        self.path = os.path.join(work, name + ".sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.msgs = []

    def drain(self):
        while True:
            try:
                self.msgs.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return

    def wait_for(self, pred, timeout, proc=None):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.drain()
            for m in self.msgs:
                if pred(m):
                    return m
            if proc is not None and proc.poll() is not None:
                self.drain()
                return next((m for m in self.msgs if pred(m)), None)
            time.sleep(0.02)
        return None

    def assignments(self):
        """Every NAME=value line received, in order."""
        return [a for m in self.msgs for a in m.split("\n") if a]


def start(args, notify, log):
    env = dict(os.environ, NOTIFY_SOCKET=notify.path)
    p = subprocess.Popen([vfmig] + args + ["--log", os.path.join(work, log)],
                         env=env, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, log + ".err"), "w"))
    procs.append(p)
    return p


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


secret = os.path.join(work, "secret")
with open(secret, "w") as f:
    f.write(os.urandom(32).hex())
os.chmod(secret, 0o600)
port = free_port()

# recv: READY=1 means "listening": connect right after it arrives.
rn = Notify("recv")
recv = start(["recv", "--device", "sim:size=384M", "--listen",
              "127.0.0.1:%d" % port, "--secret-file", secret,
              "--timeout-s", "60"], rn, "dst.jsonl")
if not rn.wait_for(lambda m: "READY=1" in m.split("\n"), 30, recv):
    fail("recv sent no READY=1", rn)
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
except OSError as e:
    fail("recv said READY=1 but 127.0.0.1:%d refuses: %s" % (port, e), rn)
ready = next(m for m in rn.msgs if "READY=1" in m.split("\n"))
if "STATUS=listening on 127.0.0.1:%d" % port not in ready:
    fail("recv's READY=1 came without its STATUS=listening", rn)
print("ok: recv READY=1 once listening:", ready.replace("\n", " | "))

# send: a migration long enough for the once-a-second progress.
sn = Notify("send")
send = start(["send", "--device", "sim:size=384M,dirty=100M", "--to",
              "127.0.0.1:%d" % port, "--secret-file", secret, "--streams",
              "1", "--timeout-s", "60"], sn, "src.jsonl")
try:
    send_rc = send.wait(120)
    recv_rc = recv.wait(60)
except subprocess.TimeoutExpired:
    fail("the migration did not end in time", sn, rn)
sn.drain()
rn.drain()
if send_rc != 0 or recv_rc != 0:
    fail("migration exit codes send %d recv %d" % (send_rc, recv_rc), sn, rn)

sa = sn.assignments()
if "READY=1" not in sa:
    fail("send sent no READY=1", sn)
i_ready = sa.index("READY=1")
auth = [a for a in sa if a.startswith("STATUS=authenticated with 127.0.0.1")]
progress = [a for a in sa if a.startswith("STATUS=pre-copy, iteration ")
            and "% (" in a and "MiB sent" in a and a.endswith("MB/s")]
if not auth:
    fail("send: no STATUS= saying it is authenticated", sn)
if not progress:
    fail("send: no STATUS= with the pre-copy progress", sn)
if sa.index(progress[0]) < i_ready:
    fail("send: progress before READY=1", sn)
if not any(a == "STATUS=migrated" for a in sa):
    fail("send: no STATUS=migrated", sn)
if sa[-1] != "STOPPING=1":
    fail("send: the last message is not STOPPING=1", sn)
ra = rn.assignments()
if ra[-1] != "STOPPING=1" or ra.count("READY=1") != 1:
    fail("recv: READY=1 once and STOPPING=1 last expected", rn)
print("ok: send READY=1 after connecting, %d progress STATUS= lines, e.g. %r"
      % (len(progress), progress[0]))
print("ok: send and recv end with STOPPING=1; send's STATUS= says migrated")

# Nobody listens: no READY=1, STOPPING=1 still.
dn = Notify("dead")
dead = start(["send", "--device", "sim:size=4M", "--to",
              "127.0.0.1:%d" % free_port(), "--secret-file", secret,
              "--timeout-s", "3"], dn, "dead.jsonl")
rc = dead.wait(60)
dn.drain()
da = dn.assignments()
if rc == 0 or "READY=1" in da:
    fail("send with no destination: exit %d, READY=1 %s" % (rc, "READY=1" in da), dn)
if not da or da[-1] != "STOPPING=1":
    fail("send with no destination: no STOPPING=1", dn)
print("ok: send with no destination: exit %d, never READY=1, then STOPPING=1" % rc)
