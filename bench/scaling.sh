#!/bin/bash
# SPDX-License-Identifier: MIT
# Transport scaling with streams, side by side: for each stream count,
# iperf3 -P N, then each given vfm-xport-perf build (old, new, ...), in
# turn in the same run, on loopback or across the netns link (run it as
# `bash bench/netns-link.sh create --rate 10gbit [--name N]` first, then with
# --link; VFM_NS_SRC/VFM_NS_DST name its namespaces, default vfm-src/vfm-dst).
# Prints one line per run: what, streams, Gbit/s, CPU s/GiB (user+sys of
# every thread of both ends over the transfer only, as vfm-xport-perf's
# cpu_s and iperf3's cpu_utilization report it), and the load average
# before it.
#
#   bash bench/scaling.sh [--link] [--gib G] [--streams 1,2,4] [--reps R] \
#        NAME=PATH/vfm-xport-perf[,ARG...] ...
#
# ARGs (comma-separated) go to that vfm-xport-perf, e.g.
# hot=build/bin/vfm-xport-perf,--buf,2 (data cycling through 2 MiB that
# stays in the cache, as iperf3's 128 KiB buffer does) next to
# cold=build/bin/vfm-xport-perf (256 MiB, cold as a device's state).
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
[ $# -gt 0 ] || { echo "usage: $0 [--link] [--gib G] [--streams L] NAME=PERF[,ARG...] ..." >&2; exit 2; }
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
SRC=() DST=() ADDR=127.0.0.1
if [ $link = 1 ]; then
	SRC=(ip netns exec "${VFM_NS_SRC:-vfm-src}") DST=(ip netns exec "${VFM_NS_DST:-vfm-dst}")
	ADDR=${VFM_NS_DST_IP:-10.250.12.2}
fi
load() { cut -d' ' -f1 /proc/loadavg; }

iperf() { # N
	local port=5299
	"${DST[@]}" timeout 30 iperf3 -s -1 -p $port -B "$ADDR" >/dev/null 2>&1 &
	sleep 0.5
	"${SRC[@]}" timeout 30 iperf3 -c "$ADDR" -p $port -P "$1" -t 5 -J >"$T/ip.json" 2>/dev/null
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

perf() { # PERF[,ARG...] N
	local -a cmd
	IFS=, read -r -a cmd <<<"$1"
	: >"$T/p.json"
	if [ $link = 0 ]; then
		"${cmd[@]}" --streams "$2" --size "$gib" >"$T/p.json" 2>/dev/null
	else
		rm -f "$T/fifo"; mkfifo "$T/fifo"
		"${DST[@]}" "${cmd[@]}" --listen "$ADDR" --streams "$2" --size "$gib" >"$T/fifo" 2>/dev/null &
		exec 7<"$T/fifo"
		read -r _ info <&7
		"${SRC[@]}" "${cmd[@]}" --connect "$ADDR" --info "$info" --streams "$2" --size "$gib" >>"$T/p.json" 2>/dev/null
		cat <&7 >>"$T/p.json"
		exec 7<&-
		wait
	fi
	# the rate on the destination's clock (the last line); CPU of both ends
	python3 - "$T/p.json" <<'PY' 2>/dev/null || echo "fail fail"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
cpu = sum(r["cpu_s"] for r in rows)
print("%.2f %.2f" % (rows[-1]["Gbps"], cpu / (rows[-1]["bytes"] / 2**30)))
PY
}

printf "%-8s %-7s %8s %10s %6s\n" what streams Gbit/s "CPU s/GiB" load
for _ in $(seq 1 "$reps"); do
	for n in ${streams//,/ }; do
		l=$(load)
		read -r g c < <(iperf "$n")
		printf "%-8s %-7s %8s %10s %6s\n" iperf3 "$n" "$g" "$c" "$l"
		for np in "$@"; do
			l=$(load)
			read -r g c < <(perf "${np#*=}" "$n")
			printf "%-8s %-7s %8s %10s %6s\n" "${np%%=*}" "$n" "$g" "$c" "$l"
		done
	done
done
