#!/usr/bin/env bash
# run.sh TEST VFMIG: one integration test (see the cases below).
set -uo pipefail
TEST=$1
export VFMIG=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

# The source's downtime split: stop + final transfer + resume + commit, each
# >= 0, summing to the downtime (3-decimal rounding aside).
check_downtime_split() { # STATS-JSON
	python3 - "$1" <<'PY' || fail "bad downtime split in $1"
import json, sys
o = json.load(open(sys.argv[1]))
parts = [o[k] for k in ("stop_ms", "final_transfer_ms", "resume_ms", "commit_ms")]
assert all(p >= 0 for p in parts), parts
assert sum(parts) <= o["downtime_ms"] + 0.005, (parts, o["downtime_ms"])
assert sum(parts) >= o["downtime_ms"] - 0.005 - o["resume_ms"], (parts, o["downtime_ms"])
assert o["resume_ms"] == o["destination_resume_ms"]
PY
}

migrate_streams() { # N [EXTRA-SPEC]
	local n=$1 extra=${2:-} mid
	mid=$(cat /proc/sys/kernel/random/uuid)
	start_recv dst "sim:size=96M,seed=11$extra"
	run_send src "sim:size=96M,dirty=40M,seed=12$extra" --streams "$n" --migration-id "$mid" \
		--stats-json "$T/stats.json"
	[ "$RC" = 0 ] || fail "send exited $RC"
	wait_pid "$RECV_PID" 30
	rc=$?
	[ "$rc" = 0 ] || fail "recv exited $rc"
	check_log_shape "$T/src.log"
	check_log_shape "$T/dst.log"
	local sd dd
	sd=$(field "$T/src.log" summary state_digest)
	dd=$(field "$T/dst.log" summary state_digest)
	[ -n "$sd" ] && [ "$sd" = "$dd" ] || fail "digests differ: source $sd destination $dd"
	[ "$(field "$T/src.log" summary streams)" = "$n" ] || fail "not $n streams"
	[ "$(field "$T/dst.log" summary migration_id)" = "$mid" ] || fail "the destination logged another migration id"
	grep -q "\"migration_id\":\"$mid\"" "$T/dst.log" || fail "migration id missing"
	grep -q '"downtime_ms"' "$T/stats.json" || fail "no stats json"
	check_downtime_split "$T/stats.json"
	has_event "$T/src.log" summary && [ -n "$(field "$T/src.log" summary commit_ms)" ] ||
		fail "the summary event has no downtime split"
	for e in handshake handshake_rule verdict iteration phase_stop_copy summary; do
		has_event "$T/src.log" "$e" || fail "no $e event in the source log"
	done
	[ "$(field "$T/src.log" summary state)" != "RUNNING" ] || fail "source still running after commit"
	if [ -n "$extra" ]; then
		grep -q 'data through read()' "$T/src.log" || fail "the source did not use read()"
		grep -q '1 MiB bounce buffer' "$T/src.log" || fail "the source did not say it bounces"
		grep -q 'loaded with write()' "$T/dst.log" || fail "the destination did not use write()"
	else
		grep -q "mapped buffer" "$T/src.log" || fail "the source did not use its buffer"
	fi
	ok "sim$extra -> sim$extra over $n stream(s), digest $sd, downtime $(field "$T/src.log" summary downtime_ms) ms"
}

# start_onpath NAME [ARGS...]: an on-path relay (onpath.py) at 127.0.0.2:$PORT
# in front of the receiver $RECV_PID; its data capture is $T/NAME.cap.
start_onpath() {
	local name=$1
	shift
	python3 "$here/onpath.py" --listen "127.0.0.2:$PORT" --to "127.0.0.1:$PORT" \
		--dst-pid "$RECV_PID" --capture "$T/$name.cap" "$@" >"$T/onpath_$name.out" 2>&1 &
	PIDS+=("$!")
	for _ in $(seq 1 50); do
		grep -q ready "$T/onpath_$name.out" && return 0
		sleep 0.1
	done
	fail "the on-path relay did not start"
}

case "$TEST" in
sim_1stream) migrate_streams 1 ;;
sim_readwrite) migrate_streams 2 ",mmap=off" ;;
sim_2streams) migrate_streams 2 ;;
sim_4streams) migrate_streams 4 ;;

no_precopy)
	# A device without PRE_COPY: stop and copy, still verified end to end.
	start_recv dst "sim:size=32M,precopy=off,features=p2p/mmap"
	run_send src "sim:size=32M,dirty=20M,seed=95,precopy=off,features=p2p/mmap"
	[ "$RC" = 0 ] || fail "send exited $RC"
	wait_pid "$RECV_PID" 30
	rc=$?
	[ "$rc" = 0 ] || fail "recv exited $rc"
	has_event "$T/src.log" no_precopy || fail "no stop-and-copy notice"
	[ "$(field "$T/src.log" summary iterations)" = 0 ] || fail "pre-copy iterations ran"
	[ "$(field "$T/src.log" summary digest_match)" = true ] || fail "digests differ"
	ok "stop and copy for a device without PRE_COPY"
	;;

refused)
	spec="sim:size=32M,seed=21"
	before=$(digest_of "$spec")
	start_recv dst "sim:size=32M,compatible=2.1.0-2.1.9"
	run_send src "$spec"
	[ "$RC" = 3 ] || fail "send exited $RC, want 3"
	wait_pid "$RECV_PID" 20
	rc=$?
	[ "$rc" = 3 ] || fail "recv exited $rc, want 3"
	[ "$(field "$T/src.log" verdict accept)" = false ] || fail "no refusal verdict"
	field "$T/src.log" handshake_rule code | grep -q . || fail "no rules logged"
	grep -q '"code":"version_incompatible"' "$T/src.log" || fail "the failed rule is not logged"
	[ "$(field "$T/src.log" summary state)" = RUNNING ] || fail "source not RUNNING"
	[ "$(field "$T/src.log" summary state_digest)" = "$before" ] || fail "source state changed"
	has_event "$T/src.log" phase_precopy && fail "the source entered PRE_COPY"
	[ "$(field "$T/dst.log" summary state)" = RUNNING ] || fail "destination touched"
	ok "refused with exit 3, source untouched ($before)"
	;;

wrong_secret)
	# A source with the wrong secret is refused (exit 6) and does not end
	# the destination: the real source that comes next migrates.
	start_recv dst "sim:size=16M"
	head -c 48 /dev/urandom | base64 -w0 >"$T/other"
	chmod 600 "$T/other"
	timeout 60 "$VFMIG" send --device sim:size=16M --to "127.0.0.1:$PORT" --secret-file "$T/other" \
		--log "$T/src.log" --timeout-s 10 >"$T/src.out" 2>&1
	RC=$?
	[ "$RC" = 6 ] || fail "send exited $RC, want 6"
	grep -q "authentication failed\|authenticat" "$T/src.log" || fail "no clear message for the source"
	kill -0 "$RECV_PID" 2>/dev/null || fail "the receiver ended on a wrong secret"
	grep -q "before it authenticated" "$T/dst.log" || fail "the receiver did not log the refused peer"
	run_send src2 "sim:size=16M"
	[ "$RC" = 0 ] || fail "the real source after a wrong one exited $RC"
	wait_pid "$RECV_PID" 20 || fail "recv failed"
	# Only wrong secrets until --wait-s is over: exit 6, with the count.
	PORT=$((PORT + 1))
	"$VFMIG" recv --device sim:size=16M --listen "127.0.0.1:$PORT" --secret-file "$T/secret" \
		--log "$T/dst2.log" --wait-s 3 >"$T/dst2.out" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	sleep 0.5
	timeout 30 "$VFMIG" send --device sim:size=16M --to "127.0.0.1:$PORT" --secret-file "$T/other" \
		--log "$T/src3.log" --timeout-s 5 >/dev/null 2>&1
	wait_pid "$pid" 20
	rc=$?
	[ "$rc" = 6 ] || fail "recv with only wrong secrets exited $rc, want 6"
	grep -q "1 failed authentication" "$T/dst2.out" || fail "no count of failed authentications on stderr"
	# secrets: empty and missing files are refused
	: >"$T/empty"
	"$VFMIG" send --device sim:size=16M --to "127.0.0.1:$PORT" --secret-file "$T/empty" >/dev/null 2>"$T/e.out"
	[ $? = 2 ] && grep -q empty "$T/e.out" || fail "an empty secret file was not refused"
	ok "wrong secret: the source exits 6, the destination keeps serving"
	;;

digest_mismatch)
	# The destination's loaded state differs from the source's (a test
	# hook alters it after RESUMING->STOP): neither side reports success,
	# the destination never runs it, the source runs again.
	VFMIG_TEST_ALTER_LOADED=1 start_recv dst "sim:size=16M,seed=81" --linger-s 2
	run_send src "sim:size=16M,seed=82"
	[ "$RC" = 4 ] || fail "send exited $RC, want 4"
	wait_pid "$RECV_PID" 20
	rc=$?
	[ "$rc" != 0 ] || fail "recv exited 0 on a state that differs"
	grep -q "differs" "$T/src.out" || fail "no sentence on the source's stderr"
	grep -q "differs" "$T/dst.out" || fail "no sentence on the destination's stderr"
	has_event "$T/dst.log" committed && fail "the destination ran the wrong state"
	[ "$(field "$T/src.log" source_resumed state)" = RUNNING ] || fail "the source was not resumed"
	grep -q '"result":"migrated"' "$T/dst.log" && fail "the destination reported migrated"
	ok "a state that differs: send 4 (resumed), recv $rc, nobody reports migrated"
	;;

integrity_required)
	# A destination that requires the stream MAC refuses a source that
	# sends none (no downgrade), before anything runs; with --integrity
	# none on both sides the migration goes through.
	start_recv dst "sim:size=16M,seed=91" --linger-s 2
	run_send src "sim:size=16M,seed=92" --integrity none
	[ "$RC" = 4 ] || fail "send without a MAC exited $RC, want 4"
	wait_pid "$RECV_PID" 20
	[ $? = 4 ] || fail "recv did not refuse a stream without a MAC"
	grep -q "no stream MAC" "$T/dst.out" || fail "no sentence for the missing MAC"
	[ "$(field "$T/src.log" source_resumed state)" = RUNNING ] || fail "the source was not resumed"
	PORT=$((PORT + 1))
	start_recv dst2 "sim:size=16M,seed=93" --integrity none
	run_send src2 "sim:size=16M,seed=94" --integrity none
	[ "$RC" = 0 ] || fail "send with --integrity none on both sides exited $RC"
	wait_pid "$RECV_PID" 20 || fail "recv failed"
	ok "a destination requiring the stream MAC refuses a source without one"
	;;

encrypt)
	# --encrypt seals the data plane. An on-path relay records what the
	# source's data streams carry: in clear, the device's stream with its
	# model string; sealed, nothing of it. Both migrations verify.
	for mode in clear sealed; do
		start_recv "dst_$mode" "sim:size=32M,seed=31"
		start_onpath "$mode"
		args=(--streams 2 --stats-json "$T/$mode.json")
		[ "$mode" = sealed ] && args+=(--encrypt)
		TO_HOST=127.0.0.2 run_send "src_$mode" "sim:size=32M,dirty=10M,seed=32" "${args[@]}"
		[ "$RC" = 0 ] || fail "$mode: send exited $RC"
		wait_pid "$RECV_PID" 30 || fail "$mode: recv failed"
		want=none
		[ "$mode" = sealed ] && want=aes-256-gcm
		[ "$(field "$T/src_$mode.log" summary cipher)" = "$want" ] || fail "$mode: source cipher is not $want"
		[ "$(field "$T/dst_$mode.log" summary cipher)" = "$want" ] || fail "$mode: destination cipher is not $want"
		[ "$(field "$T/src_$mode.log" summary digest_match)" = true ] || fail "$mode: digests differ"
		PORT=$((PORT + 1))
	done
	size=$(stat -c %s "$T/sealed.cap")
	[ "$size" -ge $((16 << 20)) ] || fail "the relay saw only $size bytes of sealed data"
	grep -aq "vfmig-edu" "$T/clear.cap" || fail "the model string is not in the clear capture (test broken)"
	! grep -aq "vfmig-edu" "$T/sealed.cap" || fail "the model string crossed the wire with --encrypt"
	ok "sealed data plane: the relay saw $size bytes and not the device's stream; both migrations verified"
	;;

encrypt_required)
	# A destination started with --encrypt refuses a source that would send
	# in clear, before the source leaves RUNNING.
	start_recv dst "sim:size=16M,seed=33" --encrypt
	run_send src "sim:size=16M,seed=34"
	[ "$RC" = 4 ] || fail "send exited $RC, want 4"
	wait_pid "$RECV_PID" 20
	[ $? != 0 ] || fail "recv accepted a source in clear"
	grep -q "requires --encrypt" "$T/dst.out" || fail "no sentence on the destination"
	grep -q "requires --encrypt" "$T/src.out" || fail "no sentence on the source"
	! has_event "$T/src.log" phase_precopy || fail "the source started saving"
	[ "$(field "$T/src.log" source_resumed state)" = RUNNING ] || fail "the source is not running"
	[ "$(field "$T/src.log" start state_digest)" = "$(field "$T/src.log" source_resumed state_digest)" ] ||
		fail "the source's state changed"
	ok "a destination requiring --encrypt refuses a clear source before anything stops"
	;;

tamper_onpath)
	# One byte inverted by a relay on the path of a data stream: sealed, the
	# destination refuses that segment; in clear, the record's CRC (or, had
	# the relay fixed that, the stream MAC) refuses the stream. Either way the destination never runs it and the source runs
	# again with its state intact.
	for mode in sealed clear; do
		start_recv "dst_$mode" "sim:size=32M,seed=35"
		start_onpath "$mode" --flip $((3 << 20))
		args=()
		[ "$mode" = sealed ] && args+=(--encrypt)
		TO_HOST=127.0.0.2 run_send "src_$mode" "sim:size=32M,seed=36" "${args[@]}"
		[ "$RC" = 4 ] || fail "$mode: send exited $RC, want 4"
		wait_pid "$RECV_PID" 30
		[ $? != 0 ] || fail "$mode: recv exited 0"
		grep -q "flipped byte" "$T/onpath_$mode.out" || fail "$mode: the relay flipped nothing"
		[ "$(field "$T/src_$mode.log" source_resumed state)" = RUNNING ] || fail "$mode: source not running"
		[ "$(field "$T/src_$mode.log" start state_digest)" = \
			"$(field "$T/src_$mode.log" source_resumed state_digest)" ] || fail "$mode: source state changed"
		[ "$(field "$T/dst_$mode.log" summary result)" = failed ] || fail "$mode: destination did not fail"
		has_event "$T/dst_$mode.log" switchover && grep -q '"to":"running"' "$T/dst_$mode.log" &&
			fail "$mode: the destination ran"
		if [ "$mode" = sealed ]; then
			grep -q "failed authentication" "$T/dst_$mode.out" || fail "sealed: not refused at the segment"
		else
			grep -Eq "corrupt|stream MAC" "$T/dst_$mode.out" || fail "clear: not refused by a check"
		fi
		PORT=$((PORT + 1))
	done
	ok "a byte changed on the path is refused, sealed at its segment, in clear by the stream's checks"
	;;

over_limit)
	# A limit of 1 ms cannot be met by any switch (the fixed costs alone are
	# more). By default it switches at --max-iterations (or at once when
	# nothing is left to send) and says it is over the limit; with
	# --if-over-limit fail the source keeps running.
	start_recv dst "sim:size=32M,seed=41"
	run_send src "sim:size=32M,dirty=60M,seed=42" --downtime-limit-ms 1 --max-iterations 3
	[ "$RC" = 0 ] || fail "switch: send exited $RC"
	wait_pid "$RECV_PID" 30 || fail "switch: recv failed"
	has_event "$T/src.log" over_limit || fail "switch: no over_limit warning"
	case "$(field "$T/src.log" iteration decision)" in
	max_iterations | fixed_costs_over_limit) ;;
	*) fail "switch: not an over-the-limit decision" ;;
	esac
	[ -n "$(field "$T/src.log" iteration recent_bandwidth_mbps)" ] || fail "no recent bandwidth in the iteration event"
	PORT=$((PORT + 1))
	start_recv dst2 "sim:size=32M,seed=43"
	run_send src2 "sim:size=32M,dirty=60M,seed=44" --downtime-limit-ms 1 --max-iterations 3 --if-over-limit fail
	[ "$RC" = 4 ] || fail "fail: send exited $RC, want 4"
	wait_pid "$RECV_PID" 30
	[ $? != 0 ] || fail "fail: recv exited 0"
	case "$(field "$T/src2.log" iteration decision)" in
	fail_max_iterations | fail_fixed_costs_over_limit) ;;
	*) fail "fail: not a decision to give up" ;;
	esac
	grep -q "did not converge" "$T/src2.out" || fail "fail: no sentence"
	! has_event "$T/src2.log" phase_stop_copy || fail "fail: the source was stopped"
	[ "$(field "$T/src2.log" source_resumed state)" = RUNNING ] || fail "fail: source not running"
	ok "over the limit: switches and says so, or with --if-over-limit fail keeps the source running"
	;;

progress)
	# Off a TTY the log carries a progress event at least once a second,
	# with query-migrate's numbers.
	start_recv dst "sim:size=256M,seed=95"
	run_send src "sim:size=256M,dirty=20M,seed=96" --rate-limit 100
	[ "$RC" = 0 ] || fail "send exited $RC"
	wait_pid "$RECV_PID" 30 || fail "recv failed"
	python3 - "$T/src.log" <<'PY' || fail "progress events missing or too far apart"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
p = [e for e in ev if e["event"] == "progress"]
keys = ("phase", "iteration", "bytes_sent", "rate_mbps", "remaining_bytes",
        "dirty_bytes", "expected_downtime_ms")
assert len(p) >= 2, len(p)
assert all(all(k in e for k in keys) for e in p), p[0]
from datetime import datetime
t = [datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() for e in p]
assert max(b - a for a, b in zip(t, t[1:])) < 1.6, t
PY
	ok "progress events once a second off a TTY"
	;;

hostile)
	# Pre-auth traffic of every kind, then a real migration that succeeds.
	# Under ASan freed memory waits in a quarantine (256 MB by default),
	# which is not memory the listener keeps: make it small here.
	[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=1"
	start_recv dst "sim:size=16M,seed=71" --preauth-s 2
	rss() { awk '/VmRSS/ {print $2}' "/proc/$RECV_PID/status"; }
	python3 "$here/hostile.py" "$PORT" kinds || fail "the hostile client failed"
	kill -0 "$RECV_PID" 2>/dev/null || fail "the receiver died of pre-auth traffic"
	has_event "$T/dst.log" connection_dropped || fail "dropped connections not logged"
	# Warm up (every pre-auth slot used once: bounded memory), then flat.
	python3 "$here/hostile.py" "$PORT" flood 200 || fail "the flood failed"
	r0=$(rss)
	t0=$(date +%s)
	python3 "$here/hostile.py" "$PORT" flood 1000 || fail "the flood failed"
	r1=$(rss)
	secs=$(($(date +%s) - t0 + 1))
	kill -0 "$RECV_PID" 2>/dev/null || fail "the receiver died of the flood"
	echo "receiver RSS: ${r0} kB before 1000 hostile connections, ${r1} kB after"
	# 512 kB is half a kilobyte a connection; ASan's own caches take a
	# little more (LeakSanitizer checks leaks there at exit).
	slack=512
	[ -n "${ASAN_OPTIONS:-}" ] && slack=2048
	[ "$r1" -le $((r0 + slack)) ] || fail "RSS grew from $r0 to $r1 kB over 1000 connections"
	# At most a line a second (the kinds above took about 5 s).
	lines=$(grep -c '"event":"connection_dropped"' "$T/dst.log")
	[ "$lines" -le $((secs + 12)) ] || fail "$lines drop lines in about $((secs + 6)) s: not rate-limited"
	# 200 silent connections at once, held while the real source comes.
	python3 "$here/hostile.py" "$PORT" hold 200 8 &
	hp=$!
	sleep 1
	run_send src "sim:size=16M,seed=72"
	[ "$RC" = 0 ] || fail "the real source amid 200 silent connections exited $RC"
	wait "$hp"
	wait_pid "$RECV_PID" 20
	rc=$?
	[ "$rc" = 0 ] || fail "recv exited $rc"
	ok "hostile pre-auth traffic: logged ($lines lines), dropped, RSS $r0 -> $r1 kB; the real source migrated amid 200 silent connections"
	;;

dirty_pinned_*)
	# Issue: a dirtying source on a slow machine. Both agents on one CPU,
	# the workload at several rates relative to the transfer, N streams;
	# each run must verify equal digests before the destination runs.
	n=${TEST#dirty_pinned_s}
	reps=${VFM_PINNED_REPS:-20}
	rates=(5M 50M 150M 400M)
	for i in $(seq 1 "$reps"); do
		rate=${rates[$((i % 4))]}
		spec="sim:size=40M,dirty=$rate,model=example.org/rx,version=4.2,compatible=4.0-"
		taskset -c 0 "$VFMIG" recv --device "$spec,seed=$i" --listen "127.0.0.1:$PORT" \
			--secret-file "$T/secret" --log "$T/d$i.log" --timeout-s 20 \
			--stats-json "$T/d$i.json" >"$T/d$i.out" 2>&1 &
		rp=$!
		PIDS+=("$rp")
		for _ in $(seq 1 100); do
			grep -q '"event":"start"' "$T/d$i.log" 2>/dev/null && break
			sleep 0.05
		done
		taskset -c 0 timeout 120 "$VFMIG" send --device "$spec,seed=$((i + 1000))" \
			--to "127.0.0.1:$PORT" --secret-file "$T/secret" --streams "$n" \
			--log "$T/s$i.log" --timeout-s 20 --stats-json "$T/s$i.json" >"$T/s$i.out" 2>&1
		RC=$?
		wait_pid "$rp" 60
		rc=$?
		[ "$RC" = 0 ] && [ "$rc" = 0 ] || fail "run $i (dirty $rate, $n streams): send $RC recv $rc"
		python3 - "$T/s$i.json" "$T/d$i.json" <<'PY' || fail "run $i (dirty $rate, $n streams): digests differ"
import json, sys
s = json.load(open(sys.argv[1]))
d = json.load(open(sys.argv[2]))
assert s["verified"] and s["digest_match"], s
assert s["state_digest"] == d["state_digest"] == s["destination_state_digest"], (s, d)
PY
		rm -f "$T"/[sd]"$i".log
	done
	ok "$reps pinned migrations with $n stream(s), dirty 5M-400M: every digest verified equal"
	;;

late_recv)
	# The orchestrator starts the sender first: it waits (within its
	# timeout) for the destination to listen, then migrates.
	start_send src "sim:size=16M,seed=61" --timeout-s 10
	sleep 1.5
	kill -0 "$SEND_PID" 2>/dev/null || fail "the sender gave up before the receiver started"
	start_recv dst "sim:size=16M,seed=62"
	wait_pid "$SEND_PID" 60
	RC=$?
	[ "$RC" = 0 ] || fail "send exited $RC"
	wait_pid "$RECV_PID" 30 || fail "recv failed"
	# and nobody ever listens: exit 4 once the timeout has passed
	PORT=$((PORT + 1))
	start=$(date +%s)
	run_send src2 "sim:size=16M,seed=63" --timeout-s 2
	[ "$RC" = 4 ] || fail "send to a closed port exited $RC, want 4"
	[ $(($(date +%s) - start)) -lt 20 ] || fail "send to a closed port did not give up in time"
	grep -q "Cannot connect to 127.0.0.1:$PORT: Connection refused" "$T/src2.log" ||
		fail "no clear message for a closed port"
	ok "a sender started before its receiver waits for it; a closed port fails with exit 4"
	;;

check)
	spec="sim:size=32M,seed=31"
	before=$(digest_of "$spec")
	start_recv dst "sim:size=32M,seed=32"
	timeout 60 "$VFMIG" check --device "$spec" --to "127.0.0.1:$PORT" --secret-file "$T/secret" \
		--log "$T/src.log" --timeout-s 10 >"$T/src.out" 2>&1
	RC=$?
	[ "$RC" = 0 ] || fail "check exited $RC"
	wait_pid "$RECV_PID" 20
	rc=$?
	[ "$rc" = 0 ] || fail "recv exited $rc"
	has_event "$T/src.log" phase_precopy && fail "check moved the source"
	has_event "$T/dst.log" phase_receiving && fail "check moved the destination"
	[ "$(field "$T/dst.log" summary state)" = RUNNING ] || fail "destination not RUNNING"
	[ "$(field "$T/src.log" summary state)" = RUNNING ] || fail "source not RUNNING"
	grep -q "accepts" "$T/src.out" || fail "no verdict printed"
	# and a refused check: 3 on both sides
	PORT=$((PORT + 1))
	start_recv dst2 "sim:size=32M,model=other-model"
	timeout 60 "$VFMIG" check --device "$spec" --to "127.0.0.1:$PORT" --secret-file "$T/secret" \
		--log "$T/src2.log" --timeout-s 10 >"$T/src2.out" 2>&1
	RC=$?
	[ "$RC" = 3 ] || fail "refused check exited $RC"
	wait_pid "$RECV_PID" 20
	rc=$?
	[ "$rc" = 3 ] || fail "recv serving a refused check exited $rc"
	[ "$(digest_of "$spec")" = "$before" ] || fail "digest changed"
	ok "check: verdict only, nothing changed"
	;;

garbage)
	start_recv dst "sim:size=16M,seed=41"
	head -c 100000 /dev/urandom >/dev/tcp/127.0.0.1/"$PORT" 2>/dev/null
	printf 'GET / HTTP/1.0\r\n\r\n' >/dev/tcp/127.0.0.1/"$PORT" 2>/dev/null
	printf 'VFMH\x01\x00\x00\x00\xff\xff\xff\x7f' >/dev/tcp/127.0.0.1/"$PORT" 2>/dev/null
	sleep 0.5
	kill -0 "$RECV_PID" || fail "the receiver died on garbage"
	has_event "$T/dst.log" connection_dropped || fail "garbage not refused in the log"
	run_send src "sim:size=16M,seed=42"
	[ "$RC" = 0 ] || fail "a real migration after garbage exited $RC"
	wait_pid "$RECV_PID" 20
	rc=$?
	[ "$rc" = 0 ] || fail "recv exited $rc"
	# and a sender talking to something that is not a vfmig receiver
	PORT=$((PORT + 1))
	python3 - "$PORT" "$T/ready" <<'PY' &
import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
open(sys.argv[2], "w").close()
c, _ = s.accept()
c.sendall(os.urandom(70000))
c.close()
PY
	fake=$!
	PIDS+=("$fake")
	for _ in $(seq 1 100); do [ -e "$T/ready" ] && break; sleep 0.1; done
	run_send src2 "sim:size=16M,seed=43"
	[ "$RC" = 4 ] || fail "a sender facing garbage exited $RC, want 4"
	grep -q "does not speak the vfmig protocol" "$T/src2.log" || fail "no clear message for the sender"
	has_event "$T/src2.log" phase_precopy && fail "the sender moved its device"
	ok "garbage refused, then a real migration served; a sender facing garbage exits 4"
	;;

kill_recv_precopy)
	spec="sim:size=128M,seed=51"
	before=$(digest_of "$spec")
	start_recv dst "sim:size=128M"
	start_send src "$spec" --timeout-s 10 --rate-limit 20
	wait_event "$T/src.log" phase_precopy
	sleep 1
	kill -9 "$RECV_PID"
	wait_pid "$SEND_PID" 60
	RC=$?
	[ "$RC" = 4 ] || fail "send exited $RC, want 4"
	[ "$(field "$T/src.log" source_resumed from_state)" = PRE_COPY ] || fail "not resumed from PRE_COPY"
	[ "$(field "$T/src.log" source_resumed state)" = RUNNING ] || fail "source not RUNNING"
	[ "$(field "$T/src.log" source_resumed state_digest)" = "$before" ] || fail "source state changed"
	# The summary names the failure itself, not a later goodbye.
	reason=$(field "$T/src.log" summary reason)
	[ -n "$reason" ] && ! grep -q BYE <<<"$reason" || fail "summary reason: '$reason'"
	ok "receiver killed in pre-copy: exit 4, source RUNNING and intact"
	;;

stalled_recv)
	# A receiver that stops answering mid pre-copy: the sender's timeout.
	spec="sim:size=128M,seed=91"
	before=$(digest_of "$spec")
	start_recv dst "sim:size=128M"
	start_send src "$spec" --timeout-s 3 --rate-limit 20
	wait_event "$T/src.log" phase_precopy
	sleep 1
	kill -STOP "$RECV_PID"
	wait_pid "$SEND_PID" 30
	RC=$?
	kill -9 "$RECV_PID"
	[ "$RC" = 4 ] || fail "send exited $RC, want 4"
	grep -qE "no progress|timed out" "$T/src.log" || fail "no timeout message"
	[ "$(field "$T/src.log" source_resumed state)" = RUNNING ] || fail "source not RUNNING"
	[ "$(field "$T/src.log" source_resumed state_digest)" = "$before" ] || fail "source state changed"
	# and a listener that accepts and never speaks
	PORT=$((PORT + 1))
	python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(1); open(sys.argv[2],"w").close()
c,_=s.accept(); time.sleep(30)' "$PORT" "$T/ready2" &
	PIDS+=($!)
	for _ in $(seq 1 100); do [ -e "$T/ready2" ] && break; sleep 0.1; done
	start_send src2 sim:size=16M --timeout-s 2
	wait_pid "$SEND_PID" 20
	RC=$?
	[ "$RC" = 4 ] || fail "send to a silent peer exited $RC, want 4"
	ok "stalled receiver and silent peer: the sender times out, exits 4, source RUNNING and intact"
	;;

kill_recv_final)
	spec="sim:size=64M,seed=61"
	before=$(digest_of "$spec")
	VFMIG_TEST_CRASH=stop_copy start_recv dst "sim:size=64M"
	run_send src "$spec"
	[ "$RC" = 4 ] || fail "send exited $RC, want 4"
	[ "$(field "$T/src.log" source_resumed from_state)" = STOP_COPY ] || fail "not resumed from STOP_COPY"
	[ "$(field "$T/src.log" source_resumed state)" = RUNNING ] || fail "source not RUNNING"
	[ "$(field "$T/src.log" source_resumed state_digest)" = "$before" ] || fail "source state changed"
	ok "receiver died in the final phase: exit 4, source RUNNING and intact"
	;;

kill_sender)
	start_recv dst "sim:size=128M,seed=71"
	start_send src "sim:size=128M" --timeout-s 10 --rate-limit 20
	wait_event "$T/src.log" phase_precopy
	sleep 1
	kill -9 "$SEND_PID"
	wait_pid "$RECV_PID" 40
	rc=$?
	[ "$rc" = 4 ] || fail "recv exited $rc, want 4"
	has_event "$T/dst.log" destination_reset || fail "no reset logged"
	[ "$(field "$T/dst.log" destination_reset state)" = RUNNING ] || fail "destination not reset to RUNNING"
	[ "$(field "$T/dst.log" destination_reset ok)" = true ] || fail "reset failed"
	ok "sender killed: receiver reset its device and exited 4"
	;;

resume_fails)
	# A destination whose device refuses the stream at the end.
	spec="sim:size=32M,seed=81"
	before=$(digest_of "$spec")
	VFMIG_TEST_CORRUPT=1 start_recv dst "sim:size=32M"
	run_send src "$spec"
	[ "$RC" = 4 ] || fail "send exited $RC, want 4"
	wait_pid "$RECV_PID" 20
	rc=$?
	[ "$rc" = 5 ] || fail "recv exited $rc, want 5"
	[ "$(field "$T/src.log" source_resumed state)" = RUNNING ] || fail "source not RUNNING"
	[ "$(field "$T/src.log" source_resumed state_digest)" = "$before" ] || fail "source state changed"
	has_event "$T/dst.log" destination_reset || fail "destination not reset"
	ok "destination failed to resume: source RUNNING and intact, destination reset"
	;;

*)
	echo "unknown test $TEST"
	exit 2
	;;
esac
exit 0
