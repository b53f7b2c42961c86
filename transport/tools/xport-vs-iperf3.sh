#!/bin/bash
# Loopback throughput of vfm-xport-perf next to iperf3 at the same stream
# count, interleaved so that both see the same machine load.
#
#   transport/tools/xport-vs-iperf3.sh [BUILD_DIR] [ROUNDS] [STREAMS...]
#
# Environment: NICE (e.g. -10) runs both tools at that nice level;
# BUF (MiB, default 4: like iperf3, a cache-resident send/landing buffer;
# 256 for a migration-like buffer); SIZE (GiB per vfm-xport-perf run,
# default 16); SECS (iperf3 -t, default 10).
set -eu
build=${1:-build}
rounds=${2:-3}
shift 2 2>/dev/null || shift $#
streams=${*:-1 2 4}
perf=$build/bin/vfm-xport-perf
nice=()
[ -n "${NICE:-}" ] && nice=(nice -n "$NICE")
port=$((20000 + RANDOM % 20000))

"${nice[@]}" iperf3 -s -p "$port" >/dev/null 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null' EXIT
sleep 0.5

ip3() {
	"${nice[@]}" iperf3 -c 127.0.0.1 -p "$port" -P "$1" -t "${SECS:-10}" ${2:-} -J |
		python3 -c 'import json, sys; d = json.load(sys.stdin); print("%.3f" % (d["end"]["sum_received"]["bits_per_second"] / 8e9))'
}

for r in $(seq "$rounds"); do
	for s in $streams; do
		ours=$("${nice[@]}" "$perf" --size "${SIZE:-16}" --streams "$s" --buf "${BUF:-4}" |
			sed 's/.*"GBps":\([0-9.]*\).*/\1/')
		ref=$(ip3 "$s")
		ref1m=$(ip3 "$s" "-l 1M")
		printf '{"round":%s,"streams":%s,"ours_GBps":%s,"iperf3_GBps":%s,"iperf3_l1M_GBps":%s,"ratio":%.2f,"load1":%s}\n' \
			"$r" "$s" "$ours" "$ref" "$ref1m" \
			"$(python3 -c "print($ours / $ref)")" "$(cut -d' ' -f1 /proc/loadavg)"
	done
done
