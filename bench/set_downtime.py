#!/usr/bin/env python3
"""Downtime of a device set against one device with the same total state.

Real `vfmig recv` + `vfmig send` pairs on loopback (sim devices), the
configurations interleaved rep by rep so a noisy machine hits them alike:
  1 x SIZE        one device
  2 x SIZE/2      a set of 2 (the same total state and total dirty rate)
  4 x SIZE/4      a set of 4
For each: downtime (ms) and where it went (stop = the set's P2P quiesce and
STOP_COPY, final transfer, resume = the destination's RUNNING_P2P + RUNNING
for every device, commit), final bytes, pre-copy MB/s, total time.
Medians, min-max in brackets.

usage: bench/set_downtime.py VFMIG [--size 256M] [--dirty 32M] [--streams 2]
                             [--reps 5] [--json FILE]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

VFMIG = sys.argv[1]
opts = dict(size="256M", dirty="32M", streams="2", reps="5", json="")
args = sys.argv[2:]
while args:
    opts[args[0].lstrip("-")] = args[1]
    args = args[2:]


def mib(s):
    return int(s[:-1]) if s.endswith("M") else int(s[:-1]) * 1024


def specs(n, dst):
    size, dirty = mib(opts["size"]) // n, mib(opts["dirty"]) / n
    out = []
    for i in range(n):
        s = "sim:size=%dM,seed=%d" % (size, 2 * i + (201 if dst else 101))
        if not dst:
            s += ",dirty=%dK" % int(dirty * 1024)
        out.append(s)
    return out


def run(tmp, port, n):
    dl, sl, sj = (os.path.join(tmp, f) for f in ("d.log", "s.log", "s.json"))
    for f in (dl, sl, sj):
        if os.path.exists(f):
            os.unlink(f)
    dev = lambda ss: [a for s in ss for a in ("--device", s)]
    sec = ["--secret-file", os.path.join(tmp, "secret")]
    d = subprocess.Popen([VFMIG, "recv"] + dev(specs(n, True)) +
                         ["--listen", "127.0.0.1:%d" % port, "--log", dl,
                          "--linger-s", "1"] + sec,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    s = subprocess.run([VFMIG, "send"] + dev(specs(n, False)) +
                       ["--to", "127.0.0.1:%d" % port, "--streams",
                        opts["streams"], "--log", sl, "--stats-json", sj] + sec,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if d.wait(60) or s.returncode:
        raise SystemExit("a migration of %d device(s) failed (%d/%d)" %
                         (n, s.returncode, d.returncode))
    o = json.load(open(sj))
    if o.get("digest_match") is not True:
        raise SystemExit("digests differ for %d device(s)" % n)
    return dict(downtime=o["downtime_ms"], stop=o["stop_ms"],
                final=o["final_transfer_ms"], resume=o["resume_ms"],
                commit=o["commit_ms"], final_bytes=o["final_bytes"],
                mbps=o["bandwidth_mbps"], total=o["total_ms"])


def main():
    tmp = tempfile.mkdtemp(prefix="vfmig-set.")
    with open(os.path.join(tmp, "secret"), "w") as f:
        f.write(os.urandom(24).hex())
    os.chmod(os.path.join(tmp, "secret"), 0o600)
    sets = (1, 2, 4)
    res = {n: [] for n in sets}
    port = 19600
    for _ in range(int(opts["reps"])):
        for n in sets:
            port += 1
            res[n].append(run(tmp, port, n))
    print("# total %s sim state dirtied at %s/s in total, %s tcp streams, "
          "%s reps interleaved; median [min-max]" %
          (opts["size"], opts["dirty"], opts["streams"], opts["reps"]))
    cols = ("downtime", "stop", "final", "resume", "commit")
    print("%-10s" % "devices" + "".join("%20s" % (c + " ms") for c in cols) +
          "%14s %10s %10s" % ("final KiB", "MB/s", "total ms"))
    for n in sets:
        r = res[n]

        def cell(k):
            v = [x[k] for x in r]
            return "%.1f [%.1f-%.1f]" % (statistics.median(v), min(v), max(v))
        print("%-10s" % ("%d x %dM" % (n, mib(opts["size"]) // n)) +
              "".join("%20s" % cell(c) for c in cols) +
              "%14.0f %10.0f %10.0f" % (
                  statistics.median(x["final_bytes"] for x in r) / 1024,
                  statistics.median(x["mbps"] for x in r),
                  statistics.median(x["total"] for x in r)))
    if opts["json"]:
        with open(opts["json"], "w") as f:
            json.dump({str(n): res[n] for n in sets}, f, indent=1)


main()
