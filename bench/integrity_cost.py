#!/usr/bin/env python3
"""The cost of the stream MAC, the digest check and --encrypt, side by side.

Real `vfmig recv` + `vfmig send` pairs on loopback (sim devices, nothing
dirtied), the configurations interleaved rep by rep so that a noisy machine
hits them alike:
  none      --integrity none --verify none
  gmac      --integrity gmac --verify none   (the stream MAC)
  gmac+dig  --integrity gmac --verify digest (the defaults)
  encrypt   --encrypt --integrity gmac --verify digest (defaults + sealed)
For each: throughput of the first pre-copy pass (MB/s), CPU seconds of both
agents per GiB moved (user+sys, from wait4), downtime (ms). Medians.

usage: bench/integrity_cost.py VFMIG [--size 1G] [--streams 2] [--reps 5]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

VFMIG = sys.argv[1]
opts = dict(size="1G", streams="2", reps="5")
args = sys.argv[2:]
while args:
    opts[args[0].lstrip("-")] = args[1]
    args = args[2:]
CONFIGS = [("none", ["--integrity", "none", "--verify", "none"]),
           ("gmac", ["--integrity", "gmac", "--verify", "none"]),
           ("gmac+digest", ["--integrity", "gmac", "--verify", "digest"]),
           ("encrypt", ["--encrypt", "--integrity", "gmac", "--verify",
                        "digest"])]


def run(tmp, port, extra):
    spec = "sim:size=%s" % opts["size"]
    dl, sl = os.path.join(tmp, "d.log"), os.path.join(tmp, "s.log")
    for f in (dl, sl):
        if os.path.exists(f):
            os.unlink(f)
    d = subprocess.Popen([VFMIG, "recv", "--device", spec + ",seed=1",
                          "--listen", "127.0.0.1:%d" % port, "--secret-file",
                          os.path.join(tmp, "secret"), "--log", dl] + extra,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    s = subprocess.Popen([VFMIG, "send", "--device", spec + ",seed=2", "--to",
                          "127.0.0.1:%d" % port, "--secret-file",
                          os.path.join(tmp, "secret"), "--streams",
                          opts["streams"], "--log", sl,
                          "--stats-json", os.path.join(tmp, "s.json")] + extra,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, st, ru_s = os.wait4(s.pid, 0)
    _, dt, ru_d = os.wait4(d.pid, 0)
    if st or dt:
        raise SystemExit("a migration failed (%d/%d)" % (st, dt))
    o = json.load(open(os.path.join(tmp, "s.json")))
    it = [json.loads(l) for l in open(sl) if '"event":"iteration"' in l][0]
    cpu = ru_s.ru_utime + ru_s.ru_stime + ru_d.ru_utime + ru_d.ru_stime
    return dict(mbps=it["bandwidth_mbps"], cpu=cpu / (o["bytes"] / 2**30),
                downtime=o["downtime_ms"])


def main():
    tmp = tempfile.mkdtemp(prefix="vfmig-icost.")
    with open(os.path.join(tmp, "secret"), "w") as f:
        f.write(os.urandom(24).hex())
    os.chmod(os.path.join(tmp, "secret"), 0o600)
    res = {name: [] for name, _ in CONFIGS}
    port = 19400
    for rep in range(int(opts["reps"])):
        for name, extra in CONFIGS:
            port += 1
            res[name].append(run(tmp, port, extra))
    print("# %s sim, %s tcp streams, %s reps interleaved, medians" %
          (opts["size"], opts["streams"], opts["reps"]))
    print("%-12s %12s %14s %12s" % ("config", "MB/s", "CPU s/GiB", "downtime ms"))
    base = statistics.median(r["mbps"] for r in res["none"])
    for name, _ in CONFIGS:
        m = statistics.median(r["mbps"] for r in res[name])
        print("%-12s %7.0f %4.2fx %14.2f %12.1f" % (
            name, m, m / base, statistics.median(r["cpu"] for r in res[name]),
            statistics.median(r["downtime"] for r in res[name])))


if __name__ == "__main__":
    main()
