#!/usr/bin/env python3
"""The switchover fault matrix: real `vfmig send` and `vfmig recv` processes
on loopback (sim devices), one fault per cell, acting on the real processes
and sockets at a named moment of the migration.

A cell holds one agent at a phase (VFMIG_TEST_HOLD: the agent creates a file
and waits until it is removed), applies the fault while it is held, releases
it and waits for both agents. Faults: kill -9 or SIGTERM of either agent, the
control connection reset (ss -K), the data connections reset (ss -K), a
black hole on the control port (nftables drop, which also swallows outcome
queries), a flipped byte in a data segment, a load slower than every
timeout. Every cell asserts the invariant (never the source resumed while
the destination runs the state), exit codes as documented, the source's
state intact whenever it was resumed, and, where the outcome is determined
by the phase, the outcome itself.

usage: fault_matrix.py VFMIG [--only PHASE[,PHASE]] [--faults F[,F]] [--jobs N]
                      [--src SPEC --dst SPEC] [--transport tcp|rdma]
                      [--addr IP] [--timeout-s S] [--set N]
(--src/--dst: real devices, e.g. vfio:0000:00:04.0 in the test guest; then
one cell at a time, and no dirtying source phase. --set N: every cell
migrates a set of N sim devices in one switchover, and the digests are the
set's.)
Exit 0 when every cell holds, 1 otherwise, 77 when a tool is missing.
"""
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

VFMIG = os.path.abspath(sys.argv[1])
BASE_PORT = int(os.environ.get("VFM_PORT", "17600"))
CI = os.environ.get("CI") == "true"

# phase -> (who is held, hold point, extra source args, source dirties)
PHASES = {
    "handshake": ("src", "handshake", [], False),
    "precopy_1": ("src", "precopy", [], False),
    "precopy_2": ("src", "precopy_2",
                  ["--downtime-limit-ms", "1", "--max-iterations", "3"], True),
    "stop_copy": ("src", "stop_copy", [], False),
    "final": ("src", "final", [], False),
    "loaded": ("dst", "loaded", [], False),
    "go_window": ("src", "before_run", [], False),
    "run_sent": ("src", "run_sent", [], False),
    "after_commit": ("src", "committed", [], False),
}
FAULTS = ["kill9_src", "kill9_dst", "term_src", "term_dst", "ctl_reset",
          "data_reset", "blackhole", "flip_byte", "slow_load"]
# Faults that act by themselves, without a hold: one cell each.
SELF_ACTING = {"flip_byte": "stream", "slow_load": "stream"}
BEFORE_RUN = ["handshake", "precopy_1", "precopy_2", "stop_copy", "final"]

SIZE = "16M"
CFG = {"src": None, "dst": None, "transport": "tcp", "addr": "127.0.0.1",
       "set": "1"}
TIMEOUT_S = "2"
LINGER_S = "4"
OUTCOME_S = "4"


def events(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def last(path, event):
    e = [x for x in events(path) if x.get("event") == event]
    return e[-1] if e else None


def sh(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


def kill_sockets(filt):
    sh("ss", "-K", *filt)


def data_ports(pid, ctl_port):
    """Local ports of the destination's data sockets (not the control
    connection's port)."""
    r = sh("ss", "-tnpH")
    ports = set()
    for line in r.stdout.splitlines():
        if "pid=%d," % pid not in line:
            continue
        local = line.split()[3]
        port = int(local.rsplit(":", 1)[1])
        if port != ctl_port:
            ports.add(port)
    return ports


class Blackhole:
    def __init__(self, port):
        self.table = "vfmig_test_%d_%d" % (os.getpid(), port)
        self.port = port

    def __enter__(self):
        cmds = [
            "add table inet %s" % self.table,
            "add chain inet %s c { type filter hook input priority -10; }"
            % self.table,
            "add rule inet %s c tcp dport %d drop" % (self.table, self.port),
            "add rule inet %s c tcp sport %d drop" % (self.table, self.port),
        ]
        for c in cmds:
            r = sh("nft", *c.split())
            if r.returncode:
                raise RuntimeError("nft %s: %s" % (c, r.stderr.strip()))
        return self

    def __exit__(self, *a):
        sh("nft", "delete", "table", "inet", self.table)


def src_devs(dirty=False):
    """--device arguments of the source: one device, or a set."""
    if CFG["src"]:
        return ["--device", CFG["src"]]
    out = []
    for i in range(int(CFG["set"])):
        out += ["--device", "sim:size=%s,seed=%d%s" %
                (SIZE, 1 + 2 * i, ",dirty=40M" if dirty else "")]
    return out


def dst_devs():
    if CFG["dst"]:
        return ["--device", CFG["dst"]]
    out = []
    for i in range(int(CFG["set"])):
        out += ["--device", "sim:size=%s,seed=%d" % (SIZE, 101 + 2 * i)]
    return out


def common():
    return ["--transport", CFG["transport"]]


def reference_digest(tmp, secret, port):
    """The source's digest (seeded or freshly opened, not dirtied): from
    one clean run."""
    src_log = os.path.join(tmp, "ref-src.log")
    dst = subprocess.Popen([VFMIG, "recv"] + dst_devs() + [
                            "--listen", "%s:%d" % (CFG["addr"], port), "--secret-file", secret,
                            "--log", os.path.join(tmp, "ref-dst.log"),
                            "--timeout-s", "30"] + common(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    rc = subprocess.run([VFMIG, "send"] + src_devs() + [
                         "--to", "%s:%d" % (CFG["addr"], port), "--secret-file", secret,
                         "--log", src_log, "--timeout-s", "30"] + common(),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    dst.wait(60)
    s = last(src_log, "summary")
    if rc != 0 or not s or not s.get("state_digest"):
        raise RuntimeError("the reference migration failed (rc %d)" % rc)
    return s["state_digest"]


def run_cell(phase, fault, port, tmp, secret, ref):
    d = os.path.join(tmp, "%s-%s" % (phase, fault))
    os.mkdir(d)
    who, point, extra, dirty = PHASES.get(phase, ("", "", [], False))
    hold = os.path.join(d, "hold")
    env_src = dict(os.environ)
    env_dst = dict(os.environ)
    for k in ("VFMIG_TEST_HOLD", "VFMIG_TEST_CORRUPT", "VFMIG_TEST_CRASH",
              "VFMIG_TEST_SLOW_LOAD_MS"):
        env_src.pop(k, None)
        env_dst.pop(k, None)
    if fault == "flip_byte":
        env_dst["VFMIG_TEST_CORRUPT"] = "1"
    elif fault == "slow_load":
        env_dst["VFMIG_TEST_SLOW_LOAD_MS"] = "5000"
    else:
        (env_src if who == "src" else env_dst)["VFMIG_TEST_HOLD"] = point + ":" + hold
    mid = str(uuid.uuid4())
    dst = subprocess.Popen([VFMIG, "recv"] + dst_devs() + [
                            "--listen", "%s:%d" % (CFG["addr"], port), "--secret-file", secret,
                            "--log", os.path.join(d, "dst.log"),
                            "--timeout-s", TIMEOUT_S, "--linger-s", LINGER_S,
                            "--wait-s", "20"] + common(),
                           env=env_dst, stdout=open(os.path.join(d, "dst.out"), "w"),
                           stderr=subprocess.STDOUT)
    for _ in range(400):
        if last(os.path.join(d, "dst.log"), "start"):
            break
        time.sleep(0.05)
    src = subprocess.Popen([VFMIG, "send"] + src_devs(dirty) + [
                            "--to", "%s:%d" % (CFG["addr"], port), "--secret-file", secret,
                            "--log", os.path.join(d, "src.log"), "--streams", "2",
                            "--migration-id", mid, "--timeout-s", TIMEOUT_S,
                            "--outcome-s", OUTCOME_S] + common() + extra,
                           env=env_src, stdout=open(os.path.join(d, "src.out"), "w"),
                           stderr=subprocess.STDOUT)
    problems = []
    bh = None
    if fault not in SELF_ACTING:
        for _ in range(2400):
            if os.path.exists(hold) or src.poll() is not None or dst.poll() is not None:
                break
            time.sleep(0.025)
        if not os.path.exists(hold):
            problems.append("never reached %s:%s" % (who, point))
        else:
            if fault == "kill9_src":
                src.send_signal(signal.SIGKILL)
            elif fault == "kill9_dst":
                dst.send_signal(signal.SIGKILL)
            elif fault == "term_src":
                src.send_signal(signal.SIGTERM)
            elif fault == "term_dst":
                dst.send_signal(signal.SIGTERM)
            elif fault == "ctl_reset":
                kill_sockets(["( dport = :%d or sport = :%d )" % (port, port)])
            elif fault == "data_reset":
                for p in data_ports(dst.pid, port):
                    kill_sockets(["( sport = :%d or dport = :%d )" % (p, p)])
            elif fault == "blackhole":
                bh = Blackhole(port).__enter__()
            os.unlink(hold)
    try:
        src_rc = src.wait(120)
        dst_rc = dst.wait(120)
    except subprocess.TimeoutExpired:
        src.kill()
        dst.kill()
        src_rc, dst_rc = src.wait(), dst.wait()
        problems.append("an agent did not exit within 60 s")
    finally:
        if bh:
            bh.__exit__()
    sl, dl = os.path.join(d, "src.log"), os.path.join(d, "dst.log")
    st = last(sl, "start")
    start_digest = st.get("state_digest") if st else None
    # The sim is seeded: its state at start is the reference run's (unless
    # it dirties, which starts 5 ms after it opens: a set's first device
    # may already have written before the set's digest).
    if not CFG["src"] and not dirty and start_digest and start_digest != ref:
        problems.append("the source started with another state")
    src_dead = src_rc == -signal.SIGKILL
    dst_dead = dst_rc == -signal.SIGKILL

    # The invariant: never the source resumed while the destination runs.
    if src_rc == 4 and dst_rc == 0:
        problems.append("BOTH RUNNING: source resumed (4) and destination running (0)")
    if not src_dead and src_rc not in (0, 4, 7):
        problems.append("source exit %d not in 0/4/7" % src_rc)
    if not dst_dead and dst_rc not in (0, 4, 5, 6):
        problems.append("destination exit %d not in 0/4/5/6" % dst_rc)
    if src_rc == 0 and not dst_dead and dst_rc != 0:
        problems.append("source says migrated, destination exit %d" % dst_rc)
    if dst_rc == 0 and not src_dead and src_rc not in (0, 7):
        problems.append("destination runs, source exit %d" % src_rc)
    # The source's state intact whenever it runs again.
    if src_rc == 4:
        r = last(sl, "source_resumed")
        touched = last(sl, "phase_precopy") is not None
        if touched and (not r or r.get("state") != "RUNNING"):
            problems.append("exit 4 without a resumed source")
        elif not touched:
            pass  # failed before the device was asked to save anything
        elif not dirty and r.get("state_digest") != start_digest:
            problems.append("resumed source digest %s, want %s" %
                            (str(r.get("state_digest"))[:12], ref[:12]))
    # A destination that runs holds exactly the source's state.
    if dst_rc == 0:
        s = last(dl, "summary")
        if not dirty and (not s or s.get("state_digest") != start_digest):
            problems.append("the destination runs another state")
    # Outcomes the phase decides.
    before_run = phase in BEFORE_RUN or fault in SELF_ACTING
    if before_run and not src_dead and src_rc != 4:
        problems.append("a fault before RUN must resume the source (exit %d)" % src_rc)
    if before_run and not dst_dead and dst_rc == 0:
        problems.append("the destination ran after a fault before RUN")
    if phase == "after_commit" and not src_dead and src_rc != 0:
        problems.append("after COMMIT the source must report migrated (exit %d)" % src_rc)
    if fault == "kill9_dst" and phase == "run_sent" and src_rc not in (0, 7):
        problems.append("destination killed after RUN: want exit 7 or 0, got %d" % src_rc)
    if phase == "go_window" and fault == "kill9_src" and dst_rc != 4:
        problems.append("source killed before RUN: the destination must abort (exit %d)" % dst_rc)
    # (A COMMIT already on its way before the hole may still arrive.)
    if fault == "blackhole" and phase == "run_sent" and src_rc not in (0, 7):
        problems.append("black hole after RUN: want exit 7 or 0, got %d" % src_rc)
    if src_rc == 7:
        st = last(sl, "summary")
        if not st or st.get("result") != "unknown" or st.get("state") == "RUNNING":
            problems.append("exit 7 without a stopped source and an 'unknown' summary")
    return (phase, fault, src_rc, dst_rc, problems, d)


def main():
    for tool in ("ss",):
        if not shutil.which(tool):
            print("SKIP: %s is missing" % tool)
            return 77
    faults = list(FAULTS)
    if not shutil.which("nft") or sh("nft", "list", "tables").returncode:
        if CI:
            print("FAIL: nft is missing or unusable (scripts/setup.sh installs nftables)")
            return 1
        print("# nft missing: the black-hole cells are left out")
        faults.remove("blackhole")
    phases = list(PHASES)
    jobs = 2
    args = sys.argv[2:]
    while args:
        if args[0] == "--only":
            phases = args[1].split(",")
        elif args[0] == "--faults":
            faults = args[1].split(",")
        elif args[0] == "--jobs":
            jobs = int(args[1])
        elif args[0] in ("--src", "--dst", "--transport", "--addr", "--set"):
            CFG[args[0][2:]] = args[1]
        elif args[0] == "--timeout-s":
            global TIMEOUT_S, LINGER_S, OUTCOME_S
            TIMEOUT_S = args[1]
            LINGER_S = OUTCOME_S = str(2 * float(args[1]))
        args = args[2:]
    tmp = tempfile.mkdtemp(prefix="vfmig-faults.")
    secret = os.path.join(tmp, "secret")
    with open(secret, "w") as f:
        f.write(os.urandom(32).hex())
    os.chmod(secret, 0o600)
    ref = reference_digest(tmp, secret, BASE_PORT)
    cells = []
    for fault in faults:
        if fault in SELF_ACTING:
            cells.append((SELF_ACTING[fault], fault))
            continue
        for phase in phases:
            if fault == "data_reset" and phase == "handshake":
                continue  # no data connection exists yet
            cells.append((phase, fault))
    results = []
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        futs = [ex.submit(run_cell, p, f, BASE_PORT + 1 + i, tmp, secret, ref)
                for i, (p, f) in enumerate(cells)]
        for fu in futs:
            results.append(fu.result())
    bad = 0
    print("%-13s %-11s %6s %6s  %s" % ("phase", "fault", "send", "recv", "result"))
    for phase, fault, src_rc, dst_rc, problems, d in results:
        print("%-13s %-11s %6s %6s  %s" % (phase, fault, src_rc, dst_rc,
                                          "ok" if not problems else "FAIL: " + "; ".join(problems)))
        if problems:
            bad += 1
            for name in ("src.log", "dst.log"):
                for e in events(os.path.join(d, name))[-6:]:
                    print("    %s %s" % (name, json.dumps(e)[:300]))
    print("# fault matrix: %d cells, %d failed" % (len(results), bad))
    if bad == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("# logs kept in %s" % tmp)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
