#!/usr/bin/env bash
# Side-by-side numbers on this host (not a test; nothing is asserted):
#  1. vfmig's TCP throughput moving a 1 GiB sim device with nothing dirtied
#     (pre-copy pass: device save -> io_uring TCP -> device load, credits
#     included) vs iperf3 on loopback with the same stream count and bytes.
#  2. For a 1 GiB sim device dirtied at 200 MB/s: downtime minus the time
#     the final bytes need at the measured bandwidth (the fixed cost of the
#     switch-over: state changes, commit round trip, destination resume).
#
#   tests/integration/measure-tcp.sh VFMIG [STREAMS...]   (default 1 2 4)
set -euo pipefail
VFMIG=$(readlink -f "${1:?usage: measure-tcp.sh VFMIG [STREAMS...]}")
shift
streams=("${@:-1 2 4}")
# shellcheck disable=SC2206
[ $# -eq 0 ] && streams=(1 2 4)
port=${VFM_PORT:-17400}
w=$(mktemp -d /tmp/vfmig-measure.XXXXXX)
trap 'rm -rf "$w"' EXIT
head -c 48 /dev/urandom | base64 -w0 >"$w/secret"
chmod 600 "$w/secret"

migrate() { # SRCSPEC STREAMS TAG
	"$VFMIG" recv --device sim:size=1G --listen 127.0.0.1:$port --secret-file "$w/secret" \
		--log "$w/$3-dst.log" --timeout-s 60 >/dev/null 2>&1 &
	local r=$!
	for _ in $(seq 1 300); do grep -q '"event":"start"' "$w/$3-dst.log" 2>/dev/null && break; sleep 0.1; done
	"$VFMIG" send --device "$1" --to 127.0.0.1:$port --secret-file "$w/secret" --streams "$2" \
		--log "$w/$3-src.log" --stats-json "$w/$3.json" --timeout-s 60 >/dev/null 2>&1
	wait "$r"
	port=$((port + 1))
}

jget() { python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); print(o[sys.argv[2]])' "$@"; }
iter1() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o=json.loads(l)
    if o["event"]=="iteration" and o["iteration"]==1: print(o["bandwidth_mbps"])' "$1"; }

echo "host: $(nproc) cores, $(uname -r); 1 GiB = 1073741824 bytes; MB = 10^6 bytes"
printf '%-8s %14s %14s %8s\n' streams "vfmig MB/s" "iperf3 MB/s" ratio
for n in "${streams[@]}"; do
	migrate "sim:size=1G" "$n" "bw$n"
	ours=$(iter1 "$w/bw$n-src.log")
	iperf3 -s -1 -p $port >/dev/null 2>&1 &
	ip=$!
	sleep 0.5
	theirs=$(iperf3 -c 127.0.0.1 -p $port -P "$n" -n 1073741824 -J |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8e6)')
	wait "$ip" || true
	port=$((port + 1))
	printf '%-8s %14.0f %14.0f %8.2f\n' "$n" "$ours" "$theirs" "$(python3 -c "print($ours/$theirs)")"
done

echo
echo "1 GiB sim, 200 MB/s dirtied, downtime limit 300 ms:"
printf '%-8s %12s %10s %14s %12s %18s %16s\n' streams downtime_ms final_MiB bandwidth_MBps final/bw_ms downtime-final/bw final_loaded_ms
for n in "${streams[@]}"; do
	migrate "sim:size=1G,dirty=200M" "$n" "dt$n"
	python3 - "$w/dt$n.json" "$n" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
bw = o["bandwidth_mbps"] * 1e6
xfer = o["final_bytes"] / bw * 1e3 if bw else float("nan")
print(f"{sys.argv[2]:<8} {o['downtime_ms']:12.1f} {o['final_bytes']/2**20:10.1f} "
      f"{o['bandwidth_mbps']:14.0f} {xfer:12.1f} {o['downtime_ms']-xfer:18.1f} "
      f"{o['final_transfer_ms']:16.1f}")
PY
done
