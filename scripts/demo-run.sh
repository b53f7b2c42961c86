#!/usr/bin/env bash
# The README's main job, given the vfmig binary: a real live migration on
# loopback between two sim devices (1 GiB, 200 MB/s dirtied while running),
# then one migration the destination refuses (its version_compatible
# excludes the source's version), showing that the source kept running.
#
#   scripts/demo-run.sh path/to/vfmig        (scripts/demo.sh calls it)
#
# Environment: VFM_DEMO_SIZE (1G), VFM_DEMO_DIRTY (200M), VFM_DEMO_PORT (7470),
# VFM_DEMO_STREAMS (2).
set -euo pipefail

VFMIG=$(readlink -f "${1:?usage: demo-run.sh VFMIG}")
SIZE=${VFM_DEMO_SIZE:-1G}
DIRTY=${VFM_DEMO_DIRTY:-200M}
PORT=${VFM_DEMO_PORT:-7470}
STREAMS=${VFM_DEMO_STREAMS:-2}

work=$(mktemp -d /tmp/vfmig-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# The per-migration secret an orchestrator would hand both agents.
umask 077
head -c 48 /dev/urandom | base64 -w0 >"$work/secret"

say() { printf '\n== %s\n' "$*"; }

# Print a JSON-lines log as readable lines while it grows, until "exit"
# (or until the agent is gone): vfmig's own view of its log.
follow() { # LOG PID
	"$VFMIG" log --follow --pid "$2" "$1"
}

# "STATE DIGEST" of the source device from its log's summary line.
state_of() { # LOG
	"$VFMIG" log "$1" | sed -n 's/.* SUMMARY [a-z]*.*: device \([A-Z_]*\), digest \([0-9a-f]*\)$/\1 \2/p'
}

say "vfmig $("$VFMIG" --version | cut -d' ' -f2): live migration of a $SIZE sim device, $DIRTY/s dirtied while it runs"
echo "secret file: $work/secret (mode 600); logs: JSON lines, one per event"

"$VFMIG" recv --device "sim:size=$SIZE" --listen "127.0.0.1:$PORT" \
	--secret-file "$work/secret" --log "$work/dst.log" --timeout-s 60 \
	>"$work/dst.out" 2>&1 &
pids+=($!)
recv_pid=$!
for _ in $(seq 1 600); do
	grep -q '"event":"start"' "$work/dst.log" 2>/dev/null && break
	sleep 0.1
done

"$VFMIG" send --device "sim:size=$SIZE,dirty=$DIRTY" --to "127.0.0.1:$PORT" \
	--secret-file "$work/secret" --streams "$STREAMS" --downtime-limit-ms 300 \
	--log "$work/src.log" --stats-json "$work/stats.json" --timeout-s 60 \
	>"$work/src.out" 2>&1 &
pids+=($!)
send_pid=$!
follow "$work/src.log" "$send_pid"
set +e
wait "$send_pid"
send_rc=$?
wait "$recv_pid"
recv_rc=$?
set -e
cat "$work/src.out" "$work/dst.out"
echo "exit codes: send $send_rc, recv $recv_rc"
if [ "$send_rc" -ne 0 ] || [ "$recv_rc" -ne 0 ]; then
	echo "demo: the migration failed" >&2
	tail -n 5 "$work/src.log" "$work/dst.log" >&2
	exit 1
fi

say "a refused migration: the destination accepts versions 2.1.0-2.1.9, the source is 2.0.3"
src_spec="sim:size=64M,seed=7"
before=$("$VFMIG" describe "$src_spec" |
	awk '$1 == "state:" { s = $2 } $1 == "state_digest:" { d = $2 } END { print s, d }')
echo "source before: $before"
PORT=$((PORT + 1))
"$VFMIG" recv --device "sim:size=64M,compatible=2.1.0-2.1.9" --listen "127.0.0.1:$PORT" \
	--secret-file "$work/secret" --log "$work/dst2.log" --timeout-s 30 \
	>"$work/dst2.out" 2>&1 &
pids+=($!)
recv_pid=$!
for _ in $(seq 1 100); do
	grep -q '"event":"start"' "$work/dst2.log" 2>/dev/null && break
	sleep 0.1
done
set +e
"$VFMIG" send --device "$src_spec" --to "127.0.0.1:$PORT" --secret-file "$work/secret" \
	--log "$work/src2.log" --timeout-s 30 >"$work/src2.out" 2>&1
send_rc=$?
wait "$recv_pid"
recv_rc=$?
set -e
"$VFMIG" log "$work/src2.log"
cat "$work/src2.out" "$work/dst2.out"
after=$(state_of "$work/src2.log")
echo "source after:  $after"
echo "exit codes: send $send_rc (3 = refused), recv $recv_rc"
if [ "$send_rc" -ne 3 ] || [ "$before" != "$after" ]; then
	echo "demo: the refusal did not behave" >&2
	exit 1
fi
echo "the source never left RUNNING and its state is unchanged."
