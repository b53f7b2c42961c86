#!/usr/bin/env bash
# Helpers for the integration tests: start agents, wait with a bound,
# read JSON log fields.
set -uo pipefail

VFMIG=${VFMIG:?}
PORT=${VFM_PORT:-17100}
T=$(mktemp -d /tmp/vfmig-it.XXXXXX)
trap 'cleanup' EXIT
PIDS=()

cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	if [ "${KEEP:-0}" = 1 ] || [ "${FAILED:-0}" = 1 ]; then
		echo "logs kept in $T"
	else
		rm -rf "$T"
	fi
}

fail() {
	FAILED=1
	echo "FAIL: $*"
	for f in "$T"/*.log "$T"/*.out; do
		[ -f "$f" ] || continue
		echo "--- $f"
		tail -n 30 "$f" | cut -c 1-600
	done
	exit 1
}

ok() { echo "ok: $*"; }

head -c 48 /dev/urandom | base64 -w0 >"$T/secret"
chmod 600 "$T/secret"

# start_recv NAME SPEC [ARGS...]: background receiver on $PORT.
start_recv() {
	local name=$1 spec=$2
	shift 2
	"$VFMIG" recv --device "$spec" --listen "127.0.0.1:$PORT" --secret-file "$T/secret" \
		--log "$T/$name.log" --timeout-s 10 --wait-s 60 "$@" >"$T/$name.out" 2>&1 &
	RECV_PID=$!
	PIDS+=("$RECV_PID")
	# wait until it listens
	for _ in $(seq 1 100); do
		grep -q '"event":"start"' "$T/$name.log" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "the receiver did not start"
}

# run_send NAME SPEC [ARGS...]: foreground sender; sets RC.
run_send() {
	local name=$1 spec=$2
	shift 2
	timeout 120 "$VFMIG" send --device "$spec" --to "${TO_HOST:-127.0.0.1}:$PORT" --secret-file "$T/secret" \
		--log "$T/$name.log" --timeout-s 10 "$@" >"$T/$name.out" 2>&1
	RC=$?
}

# start_send NAME SPEC [ARGS...]: background sender; sets SEND_PID.
start_send() {
	local name=$1 spec=$2
	shift 2
	"$VFMIG" send --device "$spec" --to "127.0.0.1:$PORT" --secret-file "$T/secret" \
		--log "$T/$name.log" "$@" >"$T/$name.out" 2>&1 &
	SEND_PID=$!
	PIDS+=("$SEND_PID")
}

# wait_event LOG EVENT: until EVENT is in LOG; fail after 10 s.
wait_event() {
	for _ in $(seq 1 100); do
		has_event "$1" "$2" && return 0
		sleep 0.1
	done
	fail "no $2 event in $1 after 10 s"
}

# wait_pid PID SECONDS: its exit code, or fail on timeout.
wait_pid() {
	local pid=$1 secs=$2 i
	for ((i = 0; i < secs * 10; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			return $?
		fi
		sleep 0.1
	done
	fail "process $pid still running after $secs s"
}

# field LOG EVENT KEY: the value of KEY in the last EVENT line.
field() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, sys
val = ""
for line in open(sys.argv[1]):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if o.get("event") == sys.argv[2] and sys.argv[3] in o:
        v = o[sys.argv[3]]
        val = json.dumps(v) if isinstance(v, (bool, dict, list)) else str(v)
print(val)
PY
}

# has_event LOG EVENT
has_event() { grep -q "\"event\":\"$2\"" "$1"; }

# every line of LOG is JSON with ts, migration_id, role and event
check_log_shape() {
	python3 - "$1" <<'PY' || fail "log $1 is not JSON lines with ts/migration_id/role/event"
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    for k in ("ts", "migration_id", "role", "event"):
        assert k in o, (k, line)
PY
}

digest_of() { "$VFMIG" describe --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state_digest"])'; }
