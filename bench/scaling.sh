#!/bin/bash
# SPDX-License-Identifier: MIT
# Transport scaling with streams, side by side: for each stream count,
# iperf3 -P N, then each given vfm-xport-perf build (old, new, ...), in
# turn in the same run, on loopback or across the netns link (run it as
# `bash bench/netns-link.sh create --rate 10gbit [--name N]` first, then with
# --link; VFM_NS_SRC/VFM_NS_DST name its namespaces, default vfm-src/vfm-dst).
# Prints one line per run: what, streams, Gbit/s, CPU s/GiB (user+sys of
# both ends), and the load average before it.
#
#   bash bench/scaling.sh [--link] [--gib G] [--streams 1,2,4] [--reps R] \
#        NAME=PATH/vfm-xport-perf ...
set -u
link=0 gib=1 streams=1,2,4 reps=1
while [ $# -gt 0 ]; do
	case "$1" in
	--link) link=1 ;;
	--gib) gib=$2; shift ;;
	--streams) streams=$2; shift ;;
	--reps) reps=$2; shift ;;
	*) break ;;
	esac
	shift
done
[ $# -gt 0 ] || { echo "usage: $0 [--link] [--gib G] [--streams L] NAME=PERF ..." >&2; exit 2; }
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
SRC=() DST=() ADDR=127.0.0.1
if [ $link = 1 ]; then
	SRC=(ip netns exec "${VFM_NS_SRC:-vfm-src}") DST=(ip netns exec "${VFM_NS_DST:-vfm-dst}")
	ADDR=${VFM_NS_DST_IP:-10.250.12.2}
fi
load() { cut -d' ' -f1 /proc/loadavg; }
cpu() { awk '{s += $1 + $2} END {printf "%.3f", s}' "$@"; }

iperf() { # N
	local port=5299
	"${DST[@]}" timeout 30 iperf3 -s -1 -p $port -B $ADDR >/dev/null 2>&1 &
	sleep 0.5
	"${SRC[@]}" timeout 30 iperf3 -c $ADDR -p $port -P "$1" -t 5 -J >"$T/ip.json" 2>/dev/null
	wait
	python3 - "$T/ip.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
e = j["end"]
bps = e["sum_received"]["bits_per_second"]
secs = e["sum_received"]["seconds"]
c = e["cpu_utilization_percent"]
gib = bps * secs / 8 / 2**30
# host = client (sender), remote = server (receiver): percent of one CPU
cpu_s = (c["host_total"] + c["remote_total"]) / 100 * secs
print("%.2f %.2f" % (bps / 1e9, cpu_s / gib))
PY
}

perf() { # PERF N
	local out gbps bytes
	if [ $link = 0 ]; then
		/usr/bin/time -f "%U %S" -o "$T/t1" "$1" --streams "$2" --size "$gib" >"$T/p.json" 2>/dev/null
		: >"$T/t2"
	else
		rm -f "$T/fifo"; mkfifo "$T/fifo"
		"${DST[@]}" /usr/bin/time -f "%U %S" -o "$T/t2" "$1" --listen $ADDR --streams "$2" --size "$gib" >"$T/fifo" 2>/dev/null &
		exec 7<"$T/fifo"
		read -r _ info <&7
		"${SRC[@]}" /usr/bin/time -f "%U %S" -o "$T/t1" "$1" --connect $ADDR --info "$info" --streams "$2" --size "$gib" >/dev/null 2>&1
		cat <&7 >"$T/p.json"
		exec 7<&-
		wait
	fi
	out=$(grep -o '"Gbps":[0-9.]*' "$T/p.json" | tail -1 | cut -d: -f2)
	bytes=$(grep -o '"bytes":[0-9]*' "$T/p.json" | tail -1 | cut -d: -f2)
	echo "${out:-fail} $(python3 -c "print('%.2f' % ($(cpu "$T/t1" "$T/t2") / ($bytes / 2**30)))" 2>/dev/null || echo fail)"
}

printf "%-8s %-7s %8s %10s %6s\n" what streams Gbit/s "CPU s/GiB" load
for r in $(seq 1 "$reps"); do
	for n in ${streams//,/ }; do
		l=$(load); set -- "$@"
		printf "%-8s %-7s %8s %10s %6s\n" iperf3 "$n" $(iperf "$n") "$l"
		for np in "$@"; do
			l=$(load)
			printf "%-8s %-7s %8s %10s %6s\n" "${np%%=*}" "$n" $(perf "${np#*=}" "$n") "$l"
		done
	done
done
