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

# Print a JSON-lines log as readable lines while it grows, until "exit".
follow() { # LOG PID
	python3 - "$1" "$2" <<'PY'
import json, os, sys, time
path, pid = sys.argv[1], int(sys.argv[2])
def alive():
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
def show(o):
    e, r = o["event"], {"source": "src", "destination": "dst"}.get(o["role"], "?")
    t = o["ts"][11:23]
    if e == "handshake":
        s, d = o["source_descriptor"], o["destination_descriptor"]
        print(f"{t} {r} handshake with {o['peer']}: protocol {o['protocol']}, "
              f"transport {o['transport']} x{o['streams']}")
        for who, x in (("source", s), ("destination", d)):
            print(f"{t} {r}   {who:11} {x['model']} {x['version']} "
                  f"(compatible {x['version_compatible']}) params {x['params']}")
    elif e == "handshake_rule":
        print(f"{t} {r}   {'PASS' if o['passed'] else 'FAIL'} {o['code']}: {o['sentence']}")
    elif e == "verdict":
        print(f"{t} {r} verdict: {'ACCEPT' if o['accept'] else 'REFUSE'} ({o['failed']} failed)")
    elif e == "iteration":
        est = o["estimated_downtime_ms"]
        print(f"{t} {r} pre-copy iteration {o['iteration']}: {o['bytes']/2**20:7.1f} MiB "
              f"in {o['ms']:6.0f} ms ({o['bandwidth_mbps']:6.0f} MB/s), dirty now "
              f"{o['dirty_bytes']/2**20:6.1f} MiB, est. downtime "
              f"{'?' if est < 0 else f'{est:.0f} ms'} -> {o['decision']}")
    elif e == "phase_stop_copy" and "precopy_ms" in o:
        print(f"{t} {r} source stopped (STOP_COPY) after {o['precopy_ms']:.0f} ms of pre-copy")
    elif e == "phase_final_sent":
        print(f"{t} {r} final data sent: {o['final_bytes']/2**20:.1f} MiB in {o['ms']:.1f} ms")
    elif e == "summary":
        if o.get("result") == "migrated":
            print(f"{t} {r} SUMMARY downtime {o['downtime_ms']:.1f} ms (limit "
                  f"{o['downtime_limit_ms']:.0f}), total {o['total_ms']:.0f} ms, "
                  f"{o['bytes']/2**20:.0f} MiB, {o['iterations']} iteration{'' if o['iterations'] == 1 else 's'}, "
                  f"{o['streams']} {o['transport']} streams")
            print(f"{t} {r}   source digest      {o['state_digest']}")
            print(f"{t} {r}   destination digest {o['destination_state_digest']}"
                  f" ({'match' if o['digest_match'] else 'MISMATCH'})")
        else:
            print(f"{t} {r} SUMMARY {o.get('result')}: source device {o.get('state')}"
                  + (f", digest {o['state_digest']}" if "state_digest" in o else ""))
    elif o.get("level") in ("warning", "error") or e in ("phase_precopy", "source_resumed"):
        print(f"{t} {r} {e}: {o.get('message', o.get('reason', ''))}")
    sys.stdout.flush()
pos, done = 0, False
while not done:
    try:
        with open(path) as f:
            f.seek(pos)
            for line in f:
                if not line.endswith("\n"):
                    break
                pos += len(line)
                o = json.loads(line)
                show(o)
                done = done or o["event"] == "exit"
    except FileNotFoundError:
        pass
    if not done:
        if not alive():
            time.sleep(0.3)
            if pos == os.path.getsize(path) if os.path.exists(path) else True:
                break
        time.sleep(0.1)
PY
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
before=$("$VFMIG" describe --json "$src_spec" |
	python3 -c 'import json,sys; o=json.load(sys.stdin); print(o["state"], o["state_digest"])')
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
follow "$work/src2.log" 0
cat "$work/src2.out" "$work/dst2.out"
after=$(python3 - "$work/src2.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o["event"] == "summary":
        print(o["state"], o["state_digest"])
PY
)
echo "source after:  $after"
echo "exit codes: send $send_rc (3 = refused), recv $recv_rc"
if [ "$send_rc" -ne 3 ] || [ "$before" != "$after" ]; then
	echo "demo: the refusal did not behave" >&2
	exit 1
fi
echo "the source never left RUNNING and its state is unchanged."
