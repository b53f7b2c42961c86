#!/bin/bash
# Several devices, one switchover: the four edu functions bound to
# vfmig_stub, each with its own memory size and dirty rate.
#  - per function: the knobs are its own, its workload runs at its own rate;
#  - vfmig/mig_trace through the uAPI (a python VFIO client): A -> C and
#    B -> D migrated interleaved in one session, digests equal, each
#    function's trace holds exactly its own arcs and the module-wide
#    sequence merges the four traces into the order the client asked;
#    a flood of refused streams on C hides no warning about D;
#  - A -> C and B -> D by two concurrent single-device agent migrations:
#    digests equal, each trace a chain of its own arcs;
#  - a set migration (vfmig send/recv with --device repeated: A, B -> C, D)
#    over tcp and rdma: exit codes, per-device digests, and from the merged
#    traces the P2P quiesce (no source stops before every source is in a
#    P2P state; no destination runs before every destination is in
#    RUNNING_P2P); and a set D refuses (version_compatible): both sources
#    still RUNNING, never stopped, digests unchanged. These skip, with the
#    reason, while vfmig takes one --device only.
# vfm-timeout: 900
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

bin=$VFM_BUILD/bin/vfmig
if [ ! -x "$bin" ]; then
	echo "skip device-set - vfmig not built in $VFM_BUILD"
	exit 77
fi
if [ "${VFM_HAVE_STUB:-0}" != 1 ]; then
	echo "skip device-set - ${VFM_STUB_REASON:-vfmig_stub.ko not loaded}"
	exit 77
fi
if [ -z "${VFM_EDU_C:-}" ] || [ -z "${VFM_EDU_D:-}" ]; then
	vfm_not_ok device-set/four-functions "found '$VFM_EDU_A' '$VFM_EDU_B' '${VFM_EDU_C:-}' '${VFM_EDU_D:-}' (run.sh gives the guest four)"
	exit 1
fi
A=$VFM_EDU_A B=$VFM_EDU_B C=$VFM_EDU_C D=$VFM_EDU_D
ALL=("$A" "$B" "$C" "$D")
knob() { echo "/sys/bus/pci/devices/$1/vfmig/$2"; }
mig() { echo "/sys/bus/pci/devices/$1/migration/$2"; }
work=$(mktemp -d /tmp/device-set.XXXXXX)
head -c 48 /dev/urandom | base64 -w0 >"$work/secret"
chmod 600 "$work/secret"

declare -A saved
for d in "$A" "$B"; do
	for k in dirty_rate mem_size; do
		saved[$d/$k]=$(cat "$(knob "$d" "$k")")
	done
done
# shellcheck disable=SC2317 # called by the EXIT trap
restore() {
	local d
	for d in "$A" "$B"; do
		for k in mem_size dirty_rate; do
			echo "${saved[$d/$k]}" >"$(knob "$d" "$k")" 2>/dev/null
		done
	done
	# functions 3 and 4 back as the guest started: unbound
	vfm_release "$C"
	vfm_release "$D"
	mkdir -p "$VFM_OUT/48-device-set"
	cp "$work"/*.log "$work"/*.json "$work"/*.out "$work"/*.trace \
		"$VFM_OUT/48-device-set/" 2>/dev/null
	rm -rf "$work"
}
trap restore EXIT
ip link set lo up 2>/dev/null

for d in "$C" "$D"; do
	if ! vfm_bind "$d" "$VFM_STUB_DRV" || [ ! -c "/dev/vfio/$(vfm_group_of "$d")" ]; then
		vfm_not_ok device-set/bind "cannot bind $d to $VFM_STUB_DRV (bound to '$(vfm_driver_of "$d")')"
		exit 1
	fi
done
vfm_ok device-set/bind-four

# --- each function its own memory size and dirty rate
declare -A SIZE RATE
SIZE[$A]=$((16 << 20)) SIZE[$B]=$((24 << 20)) SIZE[$C]=$((16 << 20)) SIZE[$D]=$((24 << 20))
RATE[$A]=1000000 RATE[$B]=3000000 RATE[$C]=500000 RATE[$D]=2000000
setknobs() {
	local d
	for d in "${ALL[@]}"; do
		echo "${SIZE[$d]}" >"$(knob "$d" mem_size)" &&
			echo "${RATE[$d]}" >"$(knob "$d" dirty_rate)" || return 1
	done
}
bad=
setknobs || bad="a write failed"
for d in "${ALL[@]}"; do
	m=$(cat "$(knob "$d" mem_size)") r=$(cat "$(knob "$d" dirty_rate)")
	p=$(cat "$(mig "$d" params/memory)")
	[ "$m-$r-$p" = "${SIZE[$d]}-${RATE[$d]}-$((SIZE[$d] >> 20))" ] ||
		bad="$bad $d: mem_size $m dirty_rate $r params/memory $p"
	[ -r "$(knob "$d" mig_trace)" ] || bad="$bad $d: no vfmig/mig_trace"
done
if [ -z "$bad" ]; then
	vfm_ok device-set/knobs-per-function
else
	vfm_not_ok device-set/knobs-per-function "$bad"
fi

# --- traces: read, merge, check (python, shared by every part below)
cat >"$work/trace.py" <<'PY'
# trace.py CMD ...: vfmig/mig_trace of several functions.
#   mark BDF...                    the highest sequence number seen
#   show MARK BDF...               the merged entries after MARK
#   chain NAME MARK ROLE BDF       one function's entries after MARK are
#                                  a chain of its own arcs, ROLE src / dst
#   set NAME MARK SRC,SRC DST,DST  the set switchover's P2P quiesce
#   quiet NAME MARK BDF...         no arc of these after MARK left RUNNING
import os, sys

ROOT = os.environ.get("VFM_TRACE_ROOT", "")  # a fake sysfs, to test this
P2P = ("RUNNING_P2P", "PRE_COPY_P2P")
STOPPED = ("STOP", "STOP_COPY", "RESUMING", "ERROR")


def entries(bdf, mark):
    out = []
    with open(f"{ROOT}/sys/bus/pci/devices/{bdf}/vfmig/mig_trace") as f:
        for line in f:
            w = line.split()
            if len(w) < 3:
                continue
            seq = int(w[0])
            done = int(w[3]) if len(w) > 3 else seq
            cause = w[4] if len(w) > 4 else "arc"
            if seq > mark:
                out.append((seq, done, w[1], w[2], cause, bdf))
    return out


def result(name, good, why=""):
    print(f"ok {name}" if good else f"not ok {name} - {why}", flush=True)
    return good


def state_at(ents, t, start):
    """The state of one function at stamp t: the last arc complete before
    t, None while an arc is under way at t."""
    st = start
    for seq, done, fr, to, cause, _ in ents:
        if done < t:
            st = to
        elif seq < t:
            return None
    return st


def chain_ok(ents):
    for (s1, d1, f1, t1, *_), (s2, d2, f2, t2, *_) in zip(ents, ents[1:]):
        if t1 != f2 or not d1 < s2:
            return False
    return all(s < d for s, d, *_ in ents)


cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "mark":
    print(max([e[1] for b in args for e in entries(b, 0)] + [0]))
elif cmd == "show":
    mark = int(args[0])
    for e in sorted(e for b in args[1:] for e in entries(b, mark)):
        print("%d %s %s -> %s (done %d, %s)" % (e[0], e[5], e[2], e[3], e[1], e[4]))
elif cmd == "chain":
    name, mark, role, bdf = args[0], int(args[1]), args[2], args[3]
    ents = entries(bdf, mark)
    arcs = [(f, t) for _, _, f, t, *_ in ents]
    if role == "src":
        want = any(t == "STOP_COPY" for _, t in arcs) and not any(t == "RESUMING" for _, t in arcs)
    else:
        want = (("STOP", "RESUMING") in arcs and ("RESUMING", "STOP") in arcs and
                arcs[-1][1] == "RUNNING" and not any(t == "STOP_COPY" for _, t in arcs))
    result(name, ents and ents[0][2] == "RUNNING" and chain_ok(ents) and want,
           f"{bdf} ({role}): {arcs}")
elif cmd == "quiet":
    name, mark = args[0], int(args[1])
    moved = [e for b in args[2:] for e in entries(b, mark) if e[3] != "RUNNING"]
    result(name, not moved, f"arcs out of RUNNING: {moved}")
elif cmd == "set":
    name, mark = args[0], int(args[1])
    srcs, dsts = args[2].split(","), args[3].split(",")
    ent = {b: entries(b, mark) for b in srcs + dsts}
    ok = True
    # every function's own entries: a chain, stamps increasing
    for b, lbl in [(b, f"src{i + 1}") for i, b in enumerate(srcs)] + \
            [(b, f"dst{i + 1}") for i, b in enumerate(dsts)]:
        ok &= result(f"{name}/trace-chain/{lbl}", bool(ent[b]) and chain_ok(ent[b]),
                     f"{[(s, f, t, d) for s, d, f, t, *_ in ent[b]]}")
    # sources: the first arc that stops any of them (into STOP or
    # STOP_COPY) began when every source was in a P2P state
    stops = [e for b in srcs for e in ent[b] if e[3] in ("STOP", "STOP_COPY")]
    sc = {b: [e for e in ent[b] if e[3] == "STOP_COPY"] for b in srcs}
    if not stops or not all(sc.values()):
        ok &= result(f"{name}/sources-p2p-before-stop-copy", False,
                     f"a source never reached STOP_COPY: {sc}")
    else:
        t = min(e[0] for e in stops)
        at = {b: state_at(ent[b], t, "RUNNING") for b in srcs}
        ok &= result(f"{name}/sources-p2p-before-stop-copy",
                     all(s in P2P for s in at.values()),
                     f"when a source stopped (seq {t}) the sources were {at}")
    # destinations: every one RESUMING -> STOP before any STOP ->
    # RUNNING_P2P, every one in RUNNING_P2P before any RUNNING
    loads = [e for b in dsts for e in ent[b] if (e[2], e[3]) == ("RESUMING", "STOP")]
    p2p = [e for b in dsts for e in ent[b] if (e[2], e[3]) == ("STOP", "RUNNING_P2P")]
    runs = [e for b in dsts for e in ent[b] if e[3] == "RUNNING"]
    if len(loads) < len(dsts) or len(p2p) < len(dsts) or len(runs) < len(dsts):
        ok &= result(f"{name}/destinations-p2p-before-running", False,
                     f"loaded {len(loads)}, RUNNING_P2P {len(p2p)}, RUNNING {len(runs)} of {len(dsts)}")
    else:
        ok &= result(f"{name}/destinations-loaded-before-p2p",
                     max(e[1] for e in loads) < min(e[0] for e in p2p),
                     f"RESUMING->STOP done at {sorted(e[1] for e in loads)}, STOP->RUNNING_P2P began at {sorted(e[0] for e in p2p)}")
        t = min(e[0] for e in runs)
        at = {b: state_at(ent[b], t, "RUNNING") for b in dsts}
        ok &= result(f"{name}/destinations-p2p-before-running",
                     all(s == "RUNNING_P2P" for s in at.values()),
                     f"when a destination ran (seq {t}) the destinations were {at}")
    sys.exit(0 if ok else 1)
PY
trc() { python3 "$work/trace.py" "$@"; }
show_trace() { # NAME MARK: the merged trace into the log and a file
	trc show "$2" "${ALL[@]}" | tee "$work/$1.trace" | sed 's/^/# trace: /'
}

# --- through the uAPI: independent workloads, and the traces
cat >"$work/uapi.py" <<'PY'
# uapi.py A B C D: a minimal VFIO migration v2 client (ctypes) that drives
# the four functions, interleaved, and prints ok / not ok lines.
import ctypes, os, struct, subprocess, sys, time

libc = ctypes.CDLL(None, use_errno=True)
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
IO = lambda nr: (ord(";") << 8) | (100 + nr)
SET_IOMMU, GROUP_SET_CONTAINER, GET_DEVICE_FD, RESET, FEATURE = IO(2), IO(4), IO(6), IO(11), IO(17)
FEATURE_SET, MIG_DEVICE_STATE = 1 << 17, 2
NUM = {"STOP": 1, "RUNNING": 2, "STOP_COPY": 3, "RESUMING": 4, "RUNNING_P2P": 5,
       "PRE_COPY": 6, "PRE_COPY_P2P": 7}
A, B, C, D = sys.argv[1:5]
LBL = {A: "A", B: "B", C: "C", D: "D"}
P = "device-set/uapi"
failed = 0


def result(name, good, why=""):
    global failed
    print(f"ok {P}/{name}" if good else f"not ok {P}/{name} - {why}", flush=True)
    failed += not good


def ioctl(fd, req, arg):
    r = libc.ioctl(fd, req, arg)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def sysfs(bdf, rel, val=None):
    path = f"/sys/bus/pci/devices/{bdf}/{rel}"
    if val is None:
        with open(path) as f:
            return f.read().strip()
    with open(path, "w") as f:
        f.write(f"{val}\n")


def trace(bdf):
    out = []
    for line in sysfs(bdf, "vfmig/mig_trace").splitlines():
        w = line.split()
        out.append((int(w[0]), w[1], w[2], int(w[3]), w[4]))
    return out


def wl(bdf):
    return int(dict(l.split() for l in sysfs(bdf, "vfmig/stats").splitlines())["workload_pages"])


cont = os.open("/dev/vfio/vfio", os.O_RDWR)
dev = {}
for bdf in (A, B, C, D):
    grp = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{bdf}/iommu_group"))
    group = os.open(f"/dev/vfio/{grp}", os.O_RDWR)
    cfd = ctypes.c_int(cont)
    ioctl(group, GROUP_SET_CONTAINER, ctypes.addressof(cfd))
    if not dev:
        ioctl(cont, SET_IOMMU, 3)  # VFIO_TYPE1v2_IOMMU
    dev[bdf] = ioctl(group, GET_DEVICE_FD, ctypes.c_char_p(bdf.encode()))


def state(bdf, st):
    buf = ctypes.create_string_buffer(struct.pack("<IIIi", 16, FEATURE_SET | MIG_DEVICE_STATE, NUM[st], -1))
    ioctl(dev[bdf], FEATURE, ctypes.addressof(buf))
    return struct.unpack_from("<i", buf.raw, 12)[0]


def drain(fd):
    out = bytearray()
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            return bytes(out)
        out += b


# 1. each workload at its own rate: two functions write, two do not, then
# the other way round
rates = {b: sysfs(b, "vfmig/dirty_rate") for b in (A, B, C, D)}
for on in ((A, D), (B, C)):
    for b in (A, B, C, D):
        sysfs(b, "vfmig/dirty_rate", 2000000 if b in on else 0)
    time.sleep(0.3)
    w0 = {b: wl(b) for b in (A, B, C, D)}
    time.sleep(1.5)
    grew = {b: wl(b) - w0[b] for b in (A, B, C, D)}
    result(f"workload-own-rate/{'+'.join(LBL[b] for b in on)}",
           all((grew[b] > 0) == (b in on) for b in grew), f"pages written: {grew}")
for b in (A, B, C, D):
    sysfs(b, "vfmig/dirty_rate", rates[b])

# 2. A -> C and B -> D, interleaved, each request's arcs as 6.12's
# vfio_mig_get_next_state walks them
mark = max([e[3] for b in (A, B, C, D) for e in trace(b)] + [0])
plan = []  # (bdf, [(from, to, cause)...]) in the order asked


def ask(bdf, frm, to, arcs):
    fd = state(bdf, to)
    plan.append((bdf, [tuple(a.split()) + ("arc",) for a in arcs]))
    return fd


fa = ask(A, "RUNNING", "PRE_COPY", ["RUNNING PRE_COPY"])
fb = ask(B, "RUNNING", "PRE_COPY", ["RUNNING PRE_COPY"])
sa, sb = bytearray(os.read(fa, 1 << 16)), bytearray(os.read(fb, 1 << 16))
fd_ = ask(D, "RUNNING", "RESUMING", ["RUNNING RUNNING_P2P", "RUNNING_P2P STOP", "STOP RESUMING"])
fc = ask(C, "RUNNING", "RESUMING", ["RUNNING RUNNING_P2P", "RUNNING_P2P STOP", "STOP RESUMING"])
ask(B, "PRE_COPY", "STOP_COPY", ["PRE_COPY PRE_COPY_P2P", "PRE_COPY_P2P STOP_COPY"])
ask(A, "PRE_COPY", "STOP_COPY", ["PRE_COPY PRE_COPY_P2P", "PRE_COPY_P2P STOP_COPY"])
sa += drain(fa)
sb += drain(fb)
os.write(fc, sa)
os.write(fd_, sb)
ask(C, "RESUMING", "STOP", ["RESUMING STOP"])
ask(D, "RESUMING", "STOP", ["RESUMING STOP"])
dg = {b: sysfs(b, "migration/state_digest") for b in (A, B, C, D)}
result("digest/A-C", dg[A] == dg[C], f"{dg[A]} {dg[C]}")
result("digest/B-D", dg[B] == dg[D], f"{dg[B]} {dg[D]}")
result("digest/A-B-differ", dg[A] != dg[B], "two functions, one state")
for f in (fa, fb, fc, fd_):
    os.close(f)
ask(A, "STOP_COPY", "STOP", ["STOP_COPY STOP"])
ask(B, "STOP_COPY", "STOP", ["STOP_COPY STOP"])
ask(D, "STOP", "RUNNING_P2P", ["STOP RUNNING_P2P"])
ask(C, "STOP", "RUNNING", ["STOP RUNNING_P2P", "RUNNING_P2P RUNNING"])
ask(D, "RUNNING_P2P", "RUNNING", ["RUNNING_P2P RUNNING"])
ioctl(dev[A], RESET, None)
plan.append((A, [("STOP", "RUNNING", "reset")]))
os.close(dev[B])
plan.append((B, [("STOP", "RUNNING", "close")]))

got = {b: [e for e in trace(b) if e[0] > mark] for b in (A, B, C, D)}
for b in (A, B, C, D):
    want = [a for pb, arcs in plan if pb == b for a in arcs]
    have = [(f, t, c) for _, f, t, _, c in got[b]]
    stamps = all(s < d for s, _, _, d, _ in got[b]) and \
        all(x[3] < y[0] for x, y in zip(got[b], got[b][1:]))
    result(f"trace-own-arcs/{LBL[b]}", have == want and stamps,
           f"want {want}, trace {got[b]}")
# the module-wide stamps order the requests as they were asked
pos = {b: 0 for b in (A, B, C, D)}
order, last_done = True, 0
for b, arcs in plan:
    ents = got[b][pos[b]:pos[b] + len(arcs)]
    pos[b] += len(arcs)
    if not ents or ents[0][0] < last_done:
        order = False
    if ents:
        last_done = ents[-1][3]
result("trace-merged-order", order, f"plan {plan} traces {got}")


# 3. warnings are rate-limited per function: 15 refused streams on C, then
# one on D, whose warning still shows
def refuse(bdf):
    ioctl(dev[bdf], RESET, None)
    fd = state(bdf, "RESUMING")
    try:
        os.write(fd, b"\xff" * 512)  # no stream header
    except OSError:
        pass
    os.close(fd)


marker = f"vfm-set-warn-{os.getpid()}"
with open("/dev/kmsg", "w") as k:
    k.write(marker + "\n")
for _ in range(15):
    refuse(C)
refuse(D)
for b in (C, D):
    ioctl(dev[b], RESET, None)
log = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
log = log[log.rfind(marker):]
nc = sum(1 for l in log.splitlines() if C in l and "refused" in l)
nd = sum(1 for l in log.splitlines() if D in l and "refused" in l)
result("warnings-per-function", 1 <= nc <= 12 and nd >= 1,
       f"refusal lines after 15 on C: {nc}, after 1 on D: {nd}")
sys.exit(1 if failed else 0)
PY
python3 "$work/uapi.py" "$A" "$B" "$C" "$D" >"$work/uapi.out" 2>&1
rc=$?
cat "$work/uapi.out"
if [ "$rc" != 0 ] && ! grep -q '^not ok' "$work/uapi.out"; then
	vfm_not_ok device-set/uapi "the client exited $rc: $(tail -n 3 "$work/uapi.out" | tr '\n' ' ')"
fi
setknobs

# --- two single-device agent migrations at once: A -> C and B -> D
# one NAME SRC DST PORT: a single-device migration in the background
one() {
	"$bin" recv --device "vfio:$3" --listen "127.0.0.1:$4" --secret-file "$work/secret" \
		--log "$work/$1-dst.log" --stats-json "$work/$1-dst.json" \
		--timeout-s 60 --wait-s 60 >"$work/$1-dst.out" 2>&1 &
	echo $! >"$work/$1.rpid"
	timeout 300 "$bin" send --device "vfio:$2" --to "127.0.0.1:$4" --secret-file "$work/secret" \
		--log "$work/$1-src.log" --stats-json "$work/$1-src.json" \
		--timeout-s 60 >"$work/$1-src.out" 2>&1
	echo $? >"$work/$1.src_rc"
	wait "$(cat "$work/$1.rpid")"
	echo $? >"$work/$1.dst_rc"
}
mark=$(trc mark "${ALL[@]}")
one single-ac "$A" "$C" 7981 &
p1=$!
one single-bd "$B" "$D" 7982 &
p2=$!
wait "$p1" "$p2"
show_trace single "$mark"
for n in ac bd; do
	rcs="$(cat "$work/single-$n.src_rc" 2>/dev/null)-$(cat "$work/single-$n.dst_rc" 2>/dev/null)"
	if [ "$rcs" != 0-0 ]; then
		vfm_not_ok "device-set/single/$n" "send-recv $rcs: $(tail -n 2 "$work/single-$n-src.log" | head -c 400)"
		continue
	fi
	if python3 - "$work/single-$n-src.json" "$work/single-$n-dst.json" <<'PY'; then
import json, sys
s, d = (json.load(open(p)) for p in sys.argv[1:3])
assert s["verified"] and s["digest_match"], s
assert s["state_digest"] == d["state_digest"] == s["destination_state_digest"], (s, d)
PY
		vfm_ok "device-set/single/$n"
	else
		vfm_not_ok "device-set/single/$n" "digests differ or were not verified"
	fi
done
trc chain device-set/single/trace-src-A "$mark" src "$A"
trc chain device-set/single/trace-src-B "$mark" src "$B"
trc chain device-set/single/trace-dst-C "$mark" dst "$C"
trc chain device-set/single/trace-dst-D "$mark" dst "$D"

# --- the set: A, B -> C, D with one handshake and one switchover
set_reason=
help=$("$bin" send --help 2>&1)
if ! grep -qiE 'repeat|several devices|multiple devices|more than one device|device set|set of devices' <<<"$help"; then
	set_reason="this vfmig takes one --device (its send --help names no repeated --device)"
fi
# setmig NAME TRANSPORT ADDR PORT: recv C, D; send A, B; sets src_rc dst_rc
setmig() {
	local name=$1 xp=$2 addr=$3 port=$4 rpid
	"$bin" recv --listen "$addr:$port" --transport "$xp" \
		--device "vfio:$C" --device "vfio:$D" --secret-file "$work/secret" \
		--log "$work/$name-dst.log" --stats-json "$work/$name-dst.json" \
		--timeout-s 60 --wait-s 60 >"$work/$name-dst.out" 2>&1 &
	rpid=$!
	timeout 400 "$bin" send --to "$addr:$port" --transport "$xp" \
		--device "vfio:$A" --device "vfio:$B" --secret-file "$work/secret" \
		--log "$work/$name-src.log" --stats-json "$work/$name-src.json" \
		--timeout-s 60 >"$work/$name-src.out" 2>&1
	src_rc=$?
	timeout 120 tail --pid="$rpid" -f /dev/null
	wait "$rpid"
	dst_rc=$?
}
# set_digests NAME: per device, the source's digest (taken stopped) equals
# the destination's (taken before it ran), from both --stats-json
set_digests() {
	python3 - "$work/$1-src.json" "$work/$1-dst.json" "$1" "vfio:$A,vfio:$B" "vfio:$C,vfio:$D" <<'PY'
import json, sys
name, sspec, dspec = sys.argv[3], sys.argv[4].split(","), sys.argv[5].split(",")
try:
    s, d = (json.load(open(p)) for p in sys.argv[1:3])
except (OSError, ValueError) as e:
    print(f"not ok device-set/{name}/digests - no stats JSON: {e}")
    sys.exit(0)


def members(j, specs):
    """The set's members in pair order: by spec when the JSON names
    them, else by index (whatever base it counts from)."""
    devs = j.get("devices")
    if not isinstance(devs, list):
        return None
    devs = sorted((e for e in devs if isinstance(e, dict)), key=lambda e: e.get("index", 0))
    by_spec = {e.get("spec"): e for e in devs}
    if all(sp in by_spec for sp in specs):
        return [by_spec[sp] for sp in specs]
    return devs


sd, dd = members(s, sspec), members(d, dspec)
if sd is None or dd is None:
    print(f"not ok device-set/{name}/digests - no devices[] in the stats JSON: {sorted(s)} / {sorted(d)}")
    sys.exit(0)
for i in range(2):
    a = sd[i] if i < len(sd) else {}
    b = dd[i] if i < len(dd) else {}
    sdig, ddig = a.get("state_digest"), b.get("state_digest")
    why = []
    if a.get("spec") != sspec[i] or b.get("spec", dspec[i]) != dspec[i]:
        why.append(f"specs {a.get('spec')} -> {b.get('spec')}, want {sspec[i]} -> {dspec[i]}")
    if not sdig or sdig != ddig:
        why.append(f"source {sdig} destination {ddig}")
    if "destination_state_digest" in a and a["destination_state_digest"] != sdig:
        why.append(f"the source saw {a['destination_state_digest']}")
    for k in ("verified", "digest_match"):
        if k in a and not a[k]:
            why.append(f"{k} false")
    print(f"ok device-set/{name}/digest/{i + 1}" if not why else
          f"not ok device-set/{name}/digest/{i + 1} - {'; '.join(why)}")
PY
}

xports=(tcp)
if [ "${VFM_HAVE_RXE:-0}" = 1 ]; then
	xports+=(rdma)
else
	vfm_not_ok device-set/rdma "no rxe0: ${VFM_RXE_REASON:-unknown}"
fi
port=7985
for xp in "${xports[@]}"; do
	name=set-$xp
	if [ -n "$set_reason" ]; then
		vfm_skip "device-set/$name" "$set_reason"
		continue
	fi
	addr=127.0.0.1
	[ "$xp" = rdma ] && addr=$VFM_GUEST_IP
	setknobs
	mark=$(trc mark "${ALL[@]}")
	port=$((port + 1))
	setmig "$name" "$xp" "$addr" "$port"
	show_trace "$name" "$mark"
	if [ "$src_rc-$dst_rc" = 0-0 ]; then
		vfm_ok "device-set/$name/exit-codes"
	else
		vfm_not_ok "device-set/$name/exit-codes" "send $src_rc recv $dst_rc: $(tail -n 2 "$work/$name-src.log" "$work/$name-dst.log" 2>/dev/null | tr '\n' ' ' | head -c 500)"
	fi
	set_digests "$name"
	trc set "device-set/$name" "$mark" "$A,$B" "$C,$D"
done

# --- refused: D accepts only 2.1.x; the sources (workload off) never stop
name=set-refused
if [ -n "$set_reason" ]; then
	vfm_skip "device-set/$name" "$set_reason"
else
	compat_d=$(cat "$(mig "$D" version_compatible)")
	setknobs
	echo 0 >"$(knob "$A" dirty_rate)"
	echo 0 >"$(knob "$B" dirty_rate)"
	echo "2.1.0-2.1.9" >"$(mig "$D" version_compatible)"
	mark=$(trc mark "${ALL[@]}")
	setmig "$name" tcp 127.0.0.1 7990
	echo "$compat_d" >"$(mig "$D" version_compatible)"
	show_trace "$name" "$mark"
	if [ "$src_rc" = 3 ] && [ "$dst_rc" != 0 ]; then
		vfm_ok "device-set/$name/exit-codes"
	else
		vfm_not_ok "device-set/$name/exit-codes" "send $src_rc recv $dst_rc, want 3 and a failure"
	fi
	trc quiet "device-set/$name/sources-never-left-running" "$mark" "$A" "$B"
	st="$(cat "$(knob "$A" mig_state)") $(cat "$(knob "$B" mig_state)")"
	vfm_check "device-set/$name/sources-running" test "$st" = "RUNNING RUNNING"
	# the agent's digests of the sources at its start and at its end: of
	# the set (a hash over every member's digest) and, where logged more
	# than once, of each member
	python3 - "$work/$name-src.log" "$work/$name-src.json" "$name" "vfio:$A" "vfio:$B" <<'PY'
import json, sys
log, sj, name, specs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
seen = {i: [] for i in range(len(specs))}
start = end = None


def take(o):
    devs = o.get("devices")
    if isinstance(devs, list):
        devs = sorted((e for e in devs if isinstance(e, dict)), key=lambda e: e.get("index", 0))
        for i, e in enumerate(devs):
            take_one(i, e.get("spec"), e)


def take_one(i, spec, e):
    """A member's digests, by spec when named, else by position."""
    if spec in specs:
        i = specs.index(spec)
    for k in ("start_state_digest", "initial_state_digest", "state_digest"):
        if e.get(k) and i in seen:
            seen[i].append(e[k])


try:
    for line in open(log):
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("event") == "start" and start is None and o.get("state_digest"):
            start = o["state_digest"]
        if o.get("event") == "summary" and o.get("state_digest"):
            end = o["state_digest"]
        take(o)
    j = json.load(open(sj))
    end = j.get("state_digest") or end
    take(j)
except (OSError, ValueError):
    pass
if start and end:
    print(f"ok device-set/{name}/sources-digest-unchanged" if start == end else
          f"not ok device-set/{name}/sources-digest-unchanged - start {start} end {end}")
for i, spec in enumerate(specs):
    d = seen[i]
    if len(d) >= 2:
        print(f"ok device-set/{name}/source-digest-unchanged/{i + 1}" if len(set(d)) == 1 else
              f"not ok device-set/{name}/source-digest-unchanged/{i + 1} - {d}")
    elif not (start and end):
        print(f"skip device-set/{name}/source-digest-unchanged/{i + 1} - the agent's log and stats hold {len(d)} digest(s) of {spec} and no start and end digest of the set")
PY
fi
exit 0
