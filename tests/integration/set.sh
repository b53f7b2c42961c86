#!/usr/bin/env bash
# set.sh TEST VFMIG: device sets, several devices in one switchover (issue
# 13), between two real agents on 127.0.0.1.
#   set_1_s1          one device: the plain path, no set machinery
#   set_2_s1 set_2_s4 set_4_s1 set_4_s4
#                     2 / 4 sims of different sizes and dirty rates over 1 /
#                     4 streams: digests equal per device; the set stopped
#                     with every device in PRE_COPY_P2P first and started
#                     with every device in RUNNING_P2P first
#   set_refused       3 devices, the third incompatible: the whole set is
#                     refused in the handshake and no source ever left RUNNING
#   set_size_mismatch 2 source devices, 3 destination devices: refused
#   set_no_p2p        a device without the P2P states: refused (set_p2p_missing)
#   set_corrupt       the second device's stream corrupted on the way in: the
#                     migration fails, every source runs again with its digest
#                     intact, every destination device is reset
set -uo pipefail
TEST=$1
export VFMIG=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

# recv_set NAME SPEC... : a background receiver for a set.
recv_set() {
	local name=$1 args=()
	shift
	for s in "$@"; do args+=(--device "$s"); done
	"$VFMIG" recv "${args[@]}" --listen "127.0.0.1:$PORT" --secret-file "$T/secret" \
		--log "$T/$name.log" --stats-json "$T/$name.json" --timeout-s 10 --wait-s 60 \
		--linger-s 1 >"$T/$name.out" 2>&1 &
	RECV_PID=$!
	PIDS+=("$RECV_PID")
	for _ in $(seq 1 100); do
		grep -q '"event":"start"' "$T/$name.log" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "the receiver did not start"
}

# send_set NAME STREAMS SPEC...: a foreground sender for a set; sets RC.
send_set() {
	local name=$1 streams=$2 args=()
	shift 2
	for s in "$@"; do args+=(--device "$s"); done
	timeout 120 "$VFMIG" send "${args[@]}" --to "127.0.0.1:$PORT" --secret-file "$T/secret" \
		--log "$T/$name.log" --stats-json "$T/$name.json" --timeout-s 10 \
		--streams "$streams" >"$T/$name.out" 2>&1
	RC=$?
}

# devices_check JSON N STATE: N devices listed, each in STATE.
devices_check() {
	python3 - "$@" <<'PY' || fail "bad devices[] in $1"
import json, sys
o = json.load(open(sys.argv[1]))
d = o["devices"]
assert len(d) == int(sys.argv[2]), d
assert [x["index"] for x in d] == list(range(1, len(d) + 1)), d
for x in d:
    assert x["state"] == sys.argv[3], x
PY
}

# The order of the set's steps in LOG, as "STATE STATE ...".
steps() {
	python3 - "$1" <<'PY'
import json, sys
out = []
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o.get("event") == "set_step":
        out.append(o["state"])
print(" ".join(out))
PY
}

migrate_set() { # STREAMS N
	local streams=$1 n=$2 src=() dst=() i
	for ((i = 1; i <= n; i++)); do
		# Different sizes and dirty rates per device; odd seeds (the
		# sim's seed is or-ed with 1).
		src+=("sim:size=$((8 << i))M,dirty=$((i * 3))M,seed=$((2 * i + 101))")
		dst+=("sim:size=$((8 << i))M,seed=$((2 * i + 201))")
	done
	recv_set dst "${dst[@]}"
	send_set src "$streams" "${src[@]}"
	[ "$RC" = 0 ] || fail "send exited $RC"
	wait_pid "$RECV_PID" 30
	rc=$?
	[ "$rc" = 0 ] || fail "recv exited $rc"
	check_log_shape "$T/src.log"
	check_log_shape "$T/dst.log"
	devices_check "$T/src.json" "$n" STOP
	devices_check "$T/dst.json" "$n" RUNNING
	python3 - "$T/src.json" "$T/dst.json" <<'PY' || fail "per-device digests differ"
import json, sys
s = json.load(open(sys.argv[1]))
d = json.load(open(sys.argv[2]))
assert s["state_digest"] == d["state_digest"], (s["state_digest"], d["state_digest"])
for a, b in zip(s["devices"], d["devices"]):
    assert len(a["state_digest"]) == 64, a
    assert a["state_digest"] == b["state_digest"], (a, b)
    assert a["bytes"] > 0 and a["bytes"] == b["bytes"], (a, b)
assert len({a["state_digest"] for a in s["devices"]}) == len(s["devices"])
PY
	[ "$(field "$T/src.log" handshake devices)" = "$n" ] || fail "the handshake does not name $n devices"
	[ "$(field "$T/src.log" verdict failed)" = 0 ] || fail "failed rules"
	grep -q '"code":"set_p2p"' "$T/src.log" || fail "no set_p2p rule"
	# The source: PRE_COPY for all, then PRE_COPY_P2P for all before any
	# STOP_COPY (STOP once the destination runs). The destination: RESUMING, STOP, then RUNNING_P2P for
	# all before any RUNNING. Each step is logged once it completed on
	# every device (dev_set.c).
	[ "$(steps "$T/src.log")" = "PRE_COPY PRE_COPY_P2P STOP_COPY STOP" ] ||
		fail "source steps: $(steps "$T/src.log")"
	[ "$(steps "$T/dst.log")" = "RESUMING STOP RUNNING_P2P RUNNING" ] ||
		fail "destination steps: $(steps "$T/dst.log")"
	"$VFMIG" log "$T/src.log" >"$T/src.human"
	grep -q 'set: all '"$n"' devices in PRE_COPY_P2P' "$T/src.human" ||
		fail "vfmig log does not show the quiesce"
	ok "a set of $n over $streams stream(s): digests equal per device, downtime $(field "$T/src.log" summary downtime_ms) ms"
}

# refused_set SRC-SPECS DST-SPECS CODE: refused in the handshake with CODE
# failed; every source still RUNNING with the digest it had.
refused_set() {
	local -n srcs=$1 dsts=$2
	local code=$3 before=() i
	for s in "${srcs[@]}"; do before+=("$(digest_of "$s")"); done
	recv_set dst "${dsts[@]}"
	send_set src 1 "${srcs[@]}"
	[ "$RC" = 3 ] || fail "send exited $RC, want 3"
	wait_pid "$RECV_PID" 20
	rc=$?
	[ "$rc" = 3 ] || fail "recv exited $rc, want 3"
	[ "$(field "$T/src.log" verdict accept)" = false ] || fail "no refusal verdict"
	grep -q "\"code\":\"$code\",\"code_num\":[0-9]*,\"passed\":false" "$T/src.log" ||
		fail "the failed rule $code is not logged"
	has_event "$T/src.log" phase_precopy && fail "a source entered PRE_COPY"
	has_event "$T/src.log" set_step && fail "a source changed state"
	for ((i = 0; i < ${#srcs[@]}; i++)); do
		python3 - "$T/src.json" "$i" "${before[$i]}" <<'PY' || fail "source device $((i + 1)) changed"
import json, sys
d = json.load(open(sys.argv[1]))["devices"][int(sys.argv[2])]
assert d["state"] == "RUNNING", d
assert d["state_digest"] == sys.argv[3], (d, sys.argv[3])
PY
	done
	ok "refused ($code) before anything stopped; ${#srcs[@]} sources RUNNING, digests unchanged"
}

case "$TEST" in
set_1_s1)
	recv_set dst "sim:size=16M,seed=301"
	send_set src 1 "sim:size=16M,dirty=4M,seed=303"
	[ "$RC" = 0 ] || fail "send exited $RC"
	wait_pid "$RECV_PID" 30 || fail "recv failed"
	has_event "$T/src.log" set_step && fail "a single device went through the set"
	[ "$(field "$T/src.log" summary digest_match)" = true ] || fail "digests differ"
	ok "one device: the plain path"
	;;
set_2_s1) migrate_set 1 2 ;;
set_2_s4) migrate_set 4 2 ;;
set_4_s1) migrate_set 1 4 ;;
set_4_s4) migrate_set 4 4 ;;
set_refused)
	S=("sim:size=8M,seed=401" "sim:size=16M,seed=403" "sim:size=8M,seed=405")
	D=("sim:size=8M" "sim:size=16M" "sim:size=8M,compatible=2.1.0-2.1.9")
	refused_set S D set_member_refused
	[ "$(field "$T/src.log" summary failed_rules)" = 2 ] ||
		fail "the summary does not count the set's two failed rules"
	grep -q '"code":"version_incompatible","code_num":[0-9]*,"passed":false,"subject":"","sentence":"[^"]*","device_index":3' "$T/src.log" ||
		fail "the third device's own rule is not logged with its index"
	;;
set_size_mismatch)
	S=("sim:size=8M,seed=411" "sim:size=8M,seed=413")
	D=("sim:size=8M" "sim:size=8M" "sim:size=8M")
	refused_set S D set_size_mismatch
	;;
set_no_p2p)
	S=("sim:size=8M,seed=421" "sim:size=8M,seed=423,features=pre_copy/mmap")
	D=("sim:size=8M" "sim:size=8M,features=pre_copy/mmap")
	refused_set S D set_p2p_missing
	;;
set_corrupt)
	S=("sim:size=16M,seed=431" "sim:size=16M,seed=433")
	before=("$(digest_of "${S[0]}")" "$(digest_of "${S[1]}")")
	VFMIG_TEST_CORRUPT_DEVICE=2 recv_set dst "sim:size=16M" "sim:size=16M"
	send_set src 1 "${S[@]}"
	[ "$RC" = 4 ] || fail "send exited $RC, want 4 (failed, source resumed)"
	wait_pid "$RECV_PID" 30
	rc=$?
	[ "$rc" = 0 ] && fail "recv exited 0 with a corrupt stream"
	grep -q '"event":"set_load_failed".*Device 2 of the set' "$T/dst.log" ||
		fail "the destination does not name device 2"
	has_event "$T/dst.log" destination_reset || fail "the destination devices were not reset"
	devices_check "$T/dst.json" 2 RUNNING
	devices_check "$T/src.json" 2 RUNNING
	python3 - "$T/src.json" "${before[@]}" <<'PY' || fail "a source's state changed"
import json, sys
d = json.load(open(sys.argv[1]))["devices"]
assert [x["state_digest"] for x in d] == sys.argv[2:], (d, sys.argv[2:])
PY
	ok "device 2's corrupt stream failed the whole set; both sources RUNNING, digests intact"
	;;
*)
	echo "unknown test $TEST"
	exit 2
	;;
esac
