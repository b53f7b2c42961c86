#!/bin/bash
# The vfmig agent over --transport rdma on rxe0 (the guest's own address):
# sim -> sim; vfio -> vfio between the two edu devices with the workload
# on (zero copy through the device's mapped buffer); refusal and wrong
# secret; faults (receiver killed, rxe link deleted) with the source back
# to RUNNING and intact; 50 migrations in one process (agent_loop); and
# throughput next to ib_write_bw and zero copy next to staging.
# vfm-timeout: 900
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

bin=$VFM_BUILD/bin/vfmig
loop=$VFM_BUILD/tests/vm/agent_loop
if [ ! -x "$bin" ]; then
	echo "skip agent-rdma - vfmig not built in $VFM_BUILD"
	exit 77
fi
if [ "${VFM_HAVE_RXE:-0}" != 1 ]; then
	vfm_not_ok agent-rdma "no rxe0: ${VFM_RXE_REASON:-unknown}"
	exit 1
fi
IP=$VFM_GUEST_IP
A=$VFM_EDU_A
B=$VFM_EDU_B
knob() { echo "/sys/bus/pci/devices/$1/vfmig/$2"; }
mig() { echo "/sys/bus/pci/devices/$1/migration/$2"; }
work=$(mktemp -d /tmp/agent-rdma.XXXXXX)
head -c 48 /dev/urandom | base64 -w0 >"$work/secret"
head -c 48 /dev/urandom | base64 -w0 >"$work/other"
chmod 600 "$work/secret" "$work/other"
stub=0
if [ "$VFM_HAVE_STUB" = 1 ]; then
	stub=1
	rate_a=$(cat "$(knob "$A" dirty_rate)")
	rate_b=$(cat "$(knob "$B" dirty_rate)")
	compat_b=$(cat "$(mig "$B" version_compatible)")
fi
restore() {
	if [ "$stub" = 1 ]; then
		echo "$rate_a" >"$(knob "$A" dirty_rate)"
		echo "$rate_b" >"$(knob "$B" dirty_rate)"
		echo "$compat_b" >"$(mig "$B" version_compatible)"
	fi
	[ -e "/sys/class/infiniband/$VFM_RXE" ] || vfm_setup_rxe
	mkdir -p "$VFM_OUT/40-agent-rdma"
	cp "$work"/*.log "$work"/*.out "$VFM_OUT/40-agent-rdma/" 2>/dev/null
	rm -rf "$work"
}
trap restore EXIT

# field LOG EVENT KEY: KEY of the last EVENT line ("" if none).
# first LOG EVENT KEY: the same, first line.
field() {
	python3 - "$1" "$2" "$3" "${4:-last}" <<'PY'
import json, sys
val = ""
for line in open(sys.argv[1]):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if o.get("event") == sys.argv[2] and sys.argv[3] in o:
        v = o[sys.argv[3]]
        val = str(v).lower() if isinstance(v, bool) else str(v)
        if sys.argv[4] == "first":
            break
print(val)
PY
}
first() { field "$1" "$2" "$3" first; }

port=7700
# pair NAME DST_SPEC SRC_SPEC [SEND OPTIONS...]: recv in the background,
# send in the foreground; sets src_rc, dst_rc; logs $work/NAME-{src,dst}.log.
# RECV_OPTS (array) adds options to recv.
RECV_OPTS=()
SEND_SECRET=$work/secret
pair() {
	local name=$1 dspec=$2 sspec=$3
	shift 3
	port=$((port + 1))
	rm -f "$work/$name-src.log" "$work/$name-dst.log"
	"$bin" recv --device "$dspec" --listen "$IP:$port" --transport rdma \
		--secret-file "$work/secret" --log "$work/$name-dst.log" \
		--timeout-s 30 --wait-s 60 "${RECV_OPTS[@]}" >"$work/$name-dst.out" 2>&1 &
	rpid=$!
	timeout 300 "$bin" send --device "$sspec" --to "$IP:$port" --transport rdma \
		--secret-file "$SEND_SECRET" --log "$work/$name-src.log" --timeout-s 30 \
		"$@" >"$work/$name-src.out" 2>&1
	src_rc=$?
	timeout 60 tail --pid="$rpid" -f /dev/null
	wait "$rpid"
	dst_rc=$?
}
why_logs() {
	tail -n 2 "$work/$1-src.log" "$work/$1-dst.log" 2>/dev/null | tr '\n' ' ' | head -c 600
}
# digest_check NAME CHECK: both summaries' state_digest equal.
digest_check() {
	local sd dd
	sd=$(field "$work/$1-src.log" summary state_digest)
	dd=$(field "$work/$1-dst.log" summary state_digest)
	if [ -n "$sd" ] && [ "$sd" = "$dd" ]; then
		vfm_ok "$2"
	else
		vfm_not_ok "$2" "source '$sd' destination '$dd'"
	fi
}
exit_check() {
	if [ "$src_rc-$dst_rc" = "$2" ]; then
		vfm_ok "$3"
	else
		vfm_not_ok "$3" "send $src_rc recv $dst_rc, want $2: $(why_logs "$1")"
	fi
}
# MiB/s of a log's first pre-copy iteration.
first_mibps() {
	local b ms
	b=$(first "$1" iteration bytes)
	ms=$(first "$1" iteration ms)
	[ -n "$b" ] && [ -n "$ms" ] && awk -v b="$b" -v ms="$ms" \
		'BEGIN { if (ms > 0) printf "%.1f", b / 1048576 / (ms / 1000) }'
}

# 1. sim -> sim over RDMA, the workload dirtying during pre-copy.
pair sim "sim:size=64M,seed=41" "sim:size=64M,dirty=20M,seed=42" --streams 2
exit_check sim 0-0 sim/exit-codes
digest_check sim sim/digest-equal
vfm_check sim/transport-rdma grep -q 'rdma stream' "$work/sim-dst.log"
vfm_measure agent-rdma/sim-bandwidth "$(field "$work/sim-src.log" summary bandwidth_mbps)" MB/s

# 2. vfio -> vfio over RDMA: A (workload on) -> B (workload off).
if [ "$stub" = 1 ]; then
	echo 2000000 >"$(knob "$A" dirty_rate)"
	echo 0 >"$(knob "$B" dirty_rate)"
	pair vfio "vfio:$B" "vfio:$A" --streams 2
	exit_check vfio 0-0 vfio/exit-codes
	digest_check vfio vfio/digest-equal
	sd=$(field "$work/vfio-src.log" summary state_digest)
	vfm_check vfio/verified-before-running test "$(field "$work/vfio-src.log" summary verified)" = true
	vfm_check vfio/workload-dirtied test -n "$(field "$work/vfio-src.log" iteration dirty_bytes)"
	# Zero copy: the source registered the device's mapped buffer, and
	# the destination received into its own.
	if grep '"event":"phase_precopy"' "$work/vfio-src.log" | grep -q "the device's mapped buffer" &&
		grep '"event":"phase_receiving"' "$work/vfio-dst.log" | grep -q "rdma stream.*the device's mapped buffer"; then
		vfm_ok vfio/zero-copy
	else
		vfm_not_ok vfio/zero-copy "$(grep -h '"event":"phase_' "$work/vfio-src.log" "$work/vfio-dst.log" | head -c 600)"
	fi
	vfm_measure agent-rdma/vfio-bandwidth "$(field "$work/vfio-src.log" summary bandwidth_mbps)" MB/s
	vfm_measure agent-rdma/vfio-downtime "$(field "$work/vfio-src.log" summary downtime_ms)" ms
else
	vfm_skip vfio "${VFM_STUB_REASON:-vfmig_stub.ko not loaded}"
fi

# 3. Refusal (B accepts only 2.1.x) and a wrong secret: nothing on A moves.
if [ "$stub" = 1 ]; then
	echo 0 >"$(knob "$A" dirty_rate)"
	echo "2.1.0-2.1.9" >"$(mig "$B" version_compatible)"
	pair refused "vfio:$B" "vfio:$A"
	exit_check refused 3-3 refused/exit-codes
	vfm_check refused/source-running test "$(field "$work/refused-src.log" summary state)" = RUNNING
	before=$(field "$work/refused-src.log" start state_digest)
	vfm_check refused/source-digest-unchanged test -n "$before" -a "$before" = "$(field "$work/refused-src.log" summary state_digest)"
	vfm_check refused/reason-logged grep -q '"code":"version_incompatible"' "$work/refused-src.log"
	echo "$compat_b" >"$(mig "$B" version_compatible)"

	# A wrong secret does not end recv: it waits for the real source
	# until --wait-s, then exits 6.
	SEND_SECRET=$work/other
	RECV_OPTS=(--wait-s 5)
	pair secret "vfio:$B" "vfio:$A"
	RECV_OPTS=()
	SEND_SECRET=$work/secret
	exit_check secret 6-6 wrong-secret/exit-codes
	vfm_check wrong-secret/source-running test "$(cat "$(knob "$A" mig_state)")" = RUNNING
else
	vfm_skip refused "${VFM_STUB_REASON:-vfmig_stub.ko not loaded}"
fi

# 4. Faults mid-transfer: the sender exits 4, A back in RUNNING with the
# digest it had before. A's memory is all zero pages here (workload off, the
# driver clears it on close), which stream format 2 sends as 24-byte ZERO
# records: about 400 KB in all, so the sender is held at 50 KB/s (about 8 s).
# fault NAME ACTION: ACTION runs 2 s into the transfer.
fault() {
	local name=$1 action=$2 before res_state res_digest
	port=$((port + 1))
	rm -f "$work/$name-src.log" "$work/$name-dst.log"
	"$bin" recv --device "vfio:$B" --listen "$IP:$port" --transport rdma \
		--secret-file "$work/secret" --log "$work/$name-dst.log" \
		--timeout-s 15 --wait-s 60 >"$work/$name-dst.out" 2>&1 &
	rpid=$!
	timeout 120 "$bin" send --device "vfio:$A" --to "$IP:$port" --transport rdma \
		--secret-file "$work/secret" --log "$work/$name-src.log" --timeout-s 15 \
		--rate-limit 0.05 >"$work/$name-src.out" 2>&1 &
	spid=$!
	# The fault must hit the source in PRE_COPY: wait for it (the source
	# first takes its device's digest, slow under TCG), then 2 s more.
	for _ in $(seq 1 600); do
		grep -q '"event":"phase_precopy"' "$work/$name-src.log" 2>/dev/null && break
		sleep 0.1
	done
	sleep 2
	if ! grep -q '"event":"iteration"\|"event":"phase_precopy"' "$work/$name-src.log"; then
		echo "# $name: the transfer had not started after 60 s"
	fi
	case $action in
	kill) kill -9 "$rpid" ;;
	link) rdma link delete "$VFM_RXE" ;;
	esac
	wait "$spid"
	src_rc=$?
	timeout 60 tail --pid="$rpid" -f /dev/null
	wait "$rpid"
	dst_rc=$?
	echo "# $name: send $src_rc recv $dst_rc"
	if [ "$src_rc" = 4 ]; then
		vfm_ok "$name/sender-exit-4"
	else
		vfm_not_ok "$name/sender-exit-4" "send exited $src_rc: $(why_logs "$name")"
	fi
	before=$(field "$work/$name-src.log" start state_digest)
	res_state=$(field "$work/$name-src.log" source_resumed state)
	res_digest=$(field "$work/$name-src.log" source_resumed state_digest)
	# Mid-transfer: the source was still in PRE_COPY when it failed.
	vfm_check "$name/failed-in-precopy" test "$(field "$work/$name-src.log" source_resumed from_state)" = PRE_COPY
	vfm_check "$name/source-resumed-running" test "$res_state" = RUNNING
	if [ -n "$res_digest" ] && [ "$res_digest" = "$before" ]; then
		vfm_ok "$name/source-resumed-digest"
	else
		vfm_not_ok "$name/source-resumed-digest" "before '$before' resumed '$res_digest'"
	fi
	vfm_check "$name/source-running" test "$(cat "$(knob "$A" mig_state)")" = RUNNING
}
if [ "$stub" = 1 ]; then
	echo 0 >"$(knob "$A" dirty_rate)"
	fault kill-receiver kill
	fault link-delete link
	if vfm_setup_rxe; then
		vfm_ok link-delete/rxe-restored
	else
		vfm_not_ok link-delete/rxe-restored "$VFM_RXE_REASON"
		exit 1
	fi
else
	vfm_skip faults "${VFM_STUB_REASON:-vfmig_stub.ko not loaded}"
fi

# 5. 50 migrations in one process (engine on two threads): fds equal,
# VmRSS within 4 MiB between migration 5 and 50.
if [ -x "$loop" ]; then
	timeout 400 "$loop" --addr "$IP" --transport rdma --count 50 --warm 5 \
		--port 7900 --dir "$work" --rss-tolerance-kib 4096 \
		>"$work/loop.out" 2>"$work/loop-err.out"
	rc=$?
	grep -E '^(ok|not ok|# )' "$work/loop.out"
	echo "# agent_loop: $(grep -c 'digest match' "$work/loop.out") sources reported a digest match"
	tail -n 3 "$work/loop-err.out" | sed 's/^/# /'
	[ "$rc" = 0 ] || grep -q '^not ok' "$work/loop.out" || vfm_not_ok loop "agent_loop exited $rc"
else
	vfm_not_ok loop "agent_loop not built in $VFM_BUILD"
fi

# 6. Measurements (no assertion), same boot, 1 MiB messages, one QP:
# the first pre-copy iteration of a 64 MiB sim (MiB/s) vs ib_write_bw;
# then zero copy (sim default: its 32 MiB mapped buffer registered) vs
# staging (mmap=off: read()/write() through the agent's state-sized
# buffer). Runs interleaved, three of each, the median reported (TCG
# timings swing by 2x from one run to the next); every sample is printed.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ib_bw() {
	timeout 120 ib_write_bw -d "$VFM_RXE" -s 1048576 -n 128 -q 1 -F >/dev/null 2>&1 &
	local srv=$!
	sleep 1
	timeout 120 ib_write_bw -d "$VFM_RXE" -s 1048576 -n 128 -q 1 -F "$IP" 2>/dev/null |
		awk '$1 == 1048576 { print $4 }'
	wait $srv
}
have_ib=1
command -v ib_write_bw >/dev/null || {
	have_ib=0
	vfm_skip measure/ib_write_bw "ib_write_bw (perftest) is not installed"
}
zc_all=()
st_all=()
ref_all=()
for r in 1 2 3; do
	pair zc$r "sim:size=64M,seed=61" "sim:size=64M,seed=62"
	v=$(first_mibps "$work/zc$r-src.log")
	[ -n "$v" ] && zc_all+=("$v")
	if [ "$have_ib" = 1 ]; then
		v=$(ib_bw)
		[ -n "$v" ] && ref_all+=("$v")
	fi
	pair st$r "sim:size=64M,seed=61,mmap=off" "sim:size=64M,seed=62,mmap=off"
	v=$(first_mibps "$work/st$r-src.log")
	[ -n "$v" ] && st_all+=("$v")
done
echo "# samples MiB/s: vfmig zero copy ${zc_all[*]}; ib_write_bw ${ref_all[*]}; vfmig staging ${st_all[*]}"
grep -q "the device's mapped buffer" "$work/zc1-src.log" ||
	echo "# zero-copy run: the source log does not show the mapped buffer"
grep -q 'read() and a 1 MiB bounce buffer' "$work/st1-src.log" ||
	echo "# staging run: the source log does not show the read() path"
zc=$(median "${zc_all[@]}")
st=$(median "${st_all[@]}")
ref=$(median "${ref_all[@]}")
[ -n "$zc" ] && vfm_measure agent-rdma/precopy-vfmig "$zc" MiB/s
[ -n "$ref" ] && vfm_measure agent-rdma/precopy-ib_write_bw "$ref" MiB/s
[ -n "$zc" ] && [ -n "$ref" ] &&
	vfm_measure agent-rdma/vfmig-vs-ib_write_bw "$(ratio "$zc" "$ref")" x
[ -n "$st" ] && vfm_measure agent-rdma/precopy-staging "$st" MiB/s
[ -n "$zc" ] && [ -n "$st" ] &&
	vfm_measure agent-rdma/zero-copy-vs-staging "$(ratio "$zc" "$st")" x
exit 0
