#!/usr/bin/env bash
# The downtime limit when the link's rate halves in the middle of pre-copy.
# Run inside bench/netns-link.sh (it makes the two namespaces and the shaped
# link, and removes them):
#
#   bench/netns-link.sh run --rate 500mbit --iperf 3 -- \
#       bench/rate_halving.sh [--reps N] [--after S] [--spec SPEC] \
#           [--limit MS] NAME=VFMIG [NAME=VFMIG ...]
#
# For each repetition and each vfmig given (e.g. before=... after=..., run
# alternately so a noisy machine hits them alike): `vfmig recv` in the
# destination namespace, `vfmig send` here; --after S seconds after the
# source enters PRE_COPY, both ends of the link are re-shaped to half the
# rate (`tc qdisc change`); the link is restored after each run. Prints one
# line per run (downtime, limit, ratio, iterations, the final decision and
# its estimate) and a summary per vfmig.
set -euo pipefail

REPS=3
AFTER=1.5
SPEC=sim:size=128M,dirty=5M
LIMIT=300
RUNS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--reps) REPS=$2; shift 2 ;;
	--after) AFTER=$2; shift 2 ;;
	--spec) SPEC=$2; shift 2 ;;
	--limit) LIMIT=$2; shift 2 ;;
	-h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*=*) RUNS+=("$1"); shift ;;
	*) echo "rate_halving.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
[ "${#RUNS[@]}" -gt 0 ] || { echo "rate_halving.sh: name a vfmig (NAME=PATH)" >&2; exit 2; }
: "${VFM_NS_SRC:?run me inside bench/netns-link.sh run}" "${VFM_NS_RATE:?}"
NAME=${VFM_NS_SRC%-src}

bps() { # tc rate -> bits/s
	awk -v r="$1" 'BEGIN { n = r + 0; u = r; sub(/^[0-9.]+/, "", u)
		m = (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : 1e9; printf "%.0f", n * m }'
}
shape() { # rate in bits/s
	local burst=$(($1 / 8 / 500))
	[ "$burst" -ge 262144 ] || burst=262144
	ip netns exec "$VFM_NS_SRC" tc qdisc change dev "$NAME-s" root tbf rate "$1bit" burst "$burst" latency 20ms
	ip netns exec "$VFM_NS_DST" tc qdisc change dev "$NAME-d" root tbf rate "$1bit" burst "$burst" latency 20ms
}
FULL=$(bps "$VFM_NS_RATE")
HALF=$((FULL / 2))
W=$(mktemp -d /tmp/vfmig-halving.XXXXXX)
trap 'shape "$FULL" 2>/dev/null || true; rm -rf "$W"' EXIT
head -c 32 /dev/urandom >"$W/secret"
chmod 600 "$W/secret"

echo "# $SPEC, limit $LIMIT ms, link $VFM_NS_RATE halved to $((HALF / 1000000))mbit $AFTER s into pre-copy"
printf '%-8s %3s %12s %8s %6s %18s %10s\n' vfmig rep downtime_ms ratio iters decision estimate_ms
port=7490
for rep in $(seq 1 "$REPS"); do
	for run in "${RUNS[@]}"; do
		name=${run%%=*} bin=${run#*=}
		port=$((port + 1))
		rm -f "$W/src.log" "$W/dst.log" "$W/src.json"
		shape "$FULL"
		# shellcheck disable=SC2086
		$VFM_NS_PEER_CMD "$bin" recv --device "$SPEC" --listen "$VFM_NS_DST_IP:$port" \
			--secret-file "$W/secret" --log "$W/dst.log" --timeout-s 60 --wait-s 60 >/dev/null 2>&1 &
		rpid=$!
		sleep 0.5
		"$bin" send --device "$SPEC,seed=$rep" --to "$VFM_NS_DST_IP:$port" --secret-file "$W/secret" \
			--downtime-limit-ms "$LIMIT" --log "$W/src.log" --stats-json "$W/src.json" \
			--timeout-s 60 >/dev/null 2>&1 &
		spid=$!
		for _ in $(seq 1 200); do
			grep -q '"event":"phase_precopy"' "$W/src.log" 2>/dev/null && break
			sleep 0.05
		done
		sleep "$AFTER"
		shape "$HALF"
		wait "$spid" || echo "# $name rep $rep: send exited $?"
		wait "$rpid" || true
		python3 - "$W/src.json" "$W/src.log" "$name" "$rep" "$LIMIT" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
its = [json.loads(l) for l in open(sys.argv[2]) if '"event":"iteration"' in l]
last = its[-1]
lim = float(sys.argv[5])
print("%-8s %3s %12.1f %7.2fx %6d %18s %10.1f" % (
    sys.argv[3], sys.argv[4], s["downtime_ms"], s["downtime_ms"] / lim,
    len(its), last["decision"], last["estimated_downtime_ms"]))
PY
	done
done
