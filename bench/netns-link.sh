#!/usr/bin/env bash
# Two hosts on one machine: two network namespaces joined by a veth pair whose
# both directions are shaped by `tc qdisc ... tbf` (netem is not needed), with
# an `iperf3 -s` on the destination side. Everything it makes is removed when
# it exits, also on INT/TERM. Root only. Addresses exist only inside the two
# namespaces.
#
#   netns-link.sh check                         can this machine do it? (0, or 77 + reason)
#   netns-link.sh create  [--rate R] [--name N] make it and leave it (prints what it made)
#   netns-link.sh destroy [--name N]            remove what `create` made
#   netns-link.sh run     [OPTS] -- CMD [ARGS]  make it, measure it with iperf3, run CMD
#                                               in the source namespace, remove it
#   netns-link.sh bench   [OPTS] -- VFMIG_BENCH [ARGS]
#                                               make it, run vfmig-bench in the source
#                                               namespace against the destination one
#                                               once per --rate, summarize, fit the
#                                               downtime model across the rates
#                                               (vfm-bench-model -> DIR/model), remove it
# OPTS:
#   --rate R[,R...]  tbf rate, tc syntax: 1gbit, 10gbit, 500mbit (1gbit). A list
#                    (bench, run): the same command once per rate, in order, on
#                    the same namespaces (`tc qdisc replace` in between)
#   --name N         namespaces N-src and N-dst, veth N-s/N-d (vfm); one at a time
#   --timeout S      hard limit for the whole command, per rate (900)
#   --iperf S        run: seconds of iperf3 before CMD, 0: none (3)
#   --out DIR        bench: vfmig-bench's --out is DIR/<rate> (bench-netns)
#   --vfmig PATH     bench: the vfmig run in the destination namespace (next to
#                    VFMIG_BENCH)
# CMD sees VFM_NS_SRC, VFM_NS_DST, VFM_NS_SRC_IP, VFM_NS_DST_IP, VFM_NS_RATE,
# VFM_NS_IPERF (host:port of the iperf3 server), VFM_NS_PEER_CMD (an
# `ip netns exec <dst> ` prefix).
set -euo pipefail

NAME=vfm
RATES=1gbit
TIMEOUT=900
IPERF_S=3
OUT=bench-netns
VFMIG=
SUBNET=10.250.12 # only ever configured inside the two namespaces
SRC_IP=$SUBNET.1
DST_IP=$SUBNET.2
IPERF_PORT=5201
ME=$(basename "$0")

log() { printf '%s: %s\n' "$ME" "$*" >&2; }
die() {
	log "$*"
	exit 2
}
usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

[ $# -ge 1 ] || usage 2
CMD=$1
shift
case "$CMD" in
check | create | destroy | run | bench) ;;
-h | --help | help) usage 0 ;;
*) die "unknown command '$CMD' (try --help)" ;;
esac
while [ $# -gt 0 ]; do
	case "$1" in
	--rate) RATES=${2:?--rate needs a value} && shift ;;
	--name) NAME=${2:?--name needs a value} && shift ;;
	--timeout) TIMEOUT=${2:?--timeout needs a value} && shift ;;
	--iperf) IPERF_S=${2:?--iperf needs a value} && shift ;;
	--out) OUT=${2:?--out needs a value} && shift ;;
	--vfmig) VFMIG=${2:?--vfmig needs a value} && shift ;;
	--) shift && break ;;
	-h | --help) usage 0 ;;
	*) die "unknown option '$1' (try --help)" ;;
	esac
	shift
done
[[ "$NAME" =~ ^[a-z][a-z0-9]{0,7}$ ]] || die "--name: 1-8 of [a-z0-9], starting with a letter"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout: seconds"
[[ "$IPERF_S" =~ ^[0-9]+$ ]] || die "--iperf: seconds"
IFS=, read -r -a RATE_LIST <<<"$RATES"
for r in "${RATE_LIST[@]}"; do
	[[ "$r" =~ ^[0-9]+(\.[0-9]+)?(kbit|mbit|gbit)$ ]] || die "--rate '$r': like 1gbit, 10gbit, 500mbit"
done
case "$CMD" in
run | bench) [ $# -ge 1 ] || die "$CMD needs a command after --" ;;
*) [ $# -eq 0 ] || die "$CMD takes no command" ;;
esac

NS_SRC=$NAME-src
NS_DST=$NAME-dst
IF_SRC=$NAME-s
IF_DST=$NAME-d
LOCK=/run/lock/vfmig-netns-$NAME.lock

# The rate in bytes/s, from tc's syntax.
rate_Bps() {
	awk -v r="$1" 'BEGIN {
		n = r + 0; u = r; sub(/^[0-9.]+/, "", u)
		m = (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : 1e9
		printf "%.0f", n * m / 8 }'
}

# tbf on both ends (data one way, ACKs the other). The bucket holds 2 ms at
# the rate (at least 256 KiB: veth hands tbf 64 KiB GSO segments), the
# queue 20 ms more.
shape() { # rate verb(add|replace)
	local bps burst ns ifc
	bps=$(rate_Bps "$1")
	burst=$((bps / 500))
	[ "$burst" -ge 262144 ] || burst=262144
	for ns in "$NS_SRC:$IF_SRC" "$NS_DST:$IF_DST"; do
		ifc=${ns#*:}
		ip netns exec "${ns%%:*}" tc qdisc "$2" dev "$ifc" root tbf rate "$1" \
			burst "$burst" latency 20ms
	done
	SHAPE="tbf rate $1 burst $burst latency 20ms"
}

exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -e "$NS_SRC" -e "$NS_DST"; }

MADE=()
IPERF_PID=
teardown() {
	local ns pids
	# Only our processes live in our namespaces: TERM them all, then KILL.
	ns_pids() { for ns in "$NS_SRC" "$NS_DST"; do [ ! -e "/run/netns/$ns" ] || ip netns pids "$ns" 2>/dev/null; done | tr '\n' ' '; }
	pids=$(ns_pids)
	if [ -n "${pids// /}" ]; then
		# shellcheck disable=SC2086
		kill -TERM $pids 2>/dev/null || true
		for _ in $(seq 20); do
			pids=$(ns_pids)
			[ -n "${pids// /}" ] || break
			sleep 0.1
		done
		# shellcheck disable=SC2086
		[ -z "${pids// /}" ] || kill -KILL $pids 2>/dev/null || true
	fi
	for ns in "$NS_SRC" "$NS_DST"; do
		[ ! -e "/run/netns/$ns" ] || ip netns del "$ns" 2>/dev/null || true
	done
	# Deleting a namespace deletes the veth end in it, and with it the pair.
	if exists || ip link show "$IF_SRC" >/dev/null 2>&1 || ip link show "$IF_DST" >/dev/null 2>&1; then
		log "could not remove everything: $(ip netns list | tr '\n' ' ')"
		return 1
	fi
	[ "${#MADE[@]}" -eq 0 ] || log "removed: netns $NS_SRC, $NS_DST (with veth $IF_SRC-$IF_DST, tbf, iperf3 -s)"
	MADE=()
}

make_link() { # rate
	exists && die "netns $NS_SRC or $NS_DST exists: another $ME --name $NAME runs (or: $ME destroy --name $NAME)"
	MADE=(1)
	ip netns add "$NS_SRC"
	ip netns add "$NS_DST"
	ip netns exec "$NS_SRC" ip link set lo up
	ip netns exec "$NS_DST" ip link set lo up
	ip link add "$IF_SRC" netns "$NS_SRC" type veth peer name "$IF_DST" netns "$NS_DST"
	ip netns exec "$NS_SRC" ip addr add "$SRC_IP/30" dev "$IF_SRC"
	ip netns exec "$NS_DST" ip addr add "$DST_IP/30" dev "$IF_DST"
	ip netns exec "$NS_SRC" ip link set "$IF_SRC" up
	ip netns exec "$NS_DST" ip link set "$IF_DST" up
	shape "$1" add
	log "made: netns $NS_SRC ($IF_SRC $SRC_IP/30) <-> netns $NS_DST ($IF_DST $DST_IP/30), veth, both ends: $SHAPE"
}

start_iperf_server() { # seconds it may live
	ip netns exec "$NS_DST" timeout "$1" iperf3 -s -B "$DST_IP" -p "$IPERF_PORT" \
		>/dev/null 2>&1 &
	IPERF_PID=$!
	for _ in $(seq 50); do
		ip netns exec "$NS_DST" ss -Hltn "sport = :$IPERF_PORT" 2>/dev/null | grep -q . && break
		sleep 0.1
	done
	log "made: iperf3 -s on $DST_IP:$IPERF_PORT in $NS_DST (pid $IPERF_PID, ends within ${1}s)"
}

iperf_once() { # seconds -> prints MB/s
	ip netns exec "$NS_SRC" timeout $(($1 + 15)) iperf3 -c "$DST_IP" -p "$IPERF_PORT" \
		-t "$1" -J 2>/dev/null |
		python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 8e6))'
}

on_signal() {
	log "interrupted ($1): removing what was made"
	trap - EXIT
	teardown || true
	[ "$1" = INT ] && exit 130
	exit 143
}

lock() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces)"
	mkdir -p /run/lock
	exec 9>"$LOCK"
	flock -n 9 || die "$ME --name $NAME already runs (lock $LOCK)"
}

# Run "$@" in the source namespace in the background, bounded by TIMEOUT, and
# wait so that a signal to this script is handled at once.
run_in_src() {
	ip netns exec "$NS_SRC" timeout -k 5 "$TIMEOUT" "$@" &
	local pid=$! rc=0
	wait "$pid" || rc=$?
	[ "$rc" -ne 124 ] || log "the command exceeded --timeout $TIMEOUT s"
	return "$rc"
}

case "$CMD" in
check)
	why=
	if [ "$(id -u)" -ne 0 ]; then
		why="not root: creating network namespaces needs root"
	elif ! command -v ip >/dev/null || ! command -v tc >/dev/null; then
		why="ip/tc missing (iproute2; scripts/setup.sh installs it)"
	else
		NAME=vfmchk$((RANDOM % 90 + 10))
		NS_SRC=$NAME-src NS_DST=$NAME-dst IF_SRC=$NAME-s IF_DST=$NAME-d
		if ! err=$(ip netns add "$NS_SRC" 2>&1 && ip netns add "$NS_DST" 2>&1); then
			why="cannot create a network namespace: $err"
		elif ! err=$(ip link add "$IF_SRC" netns "$NS_SRC" type veth peer name "$IF_DST" netns "$NS_DST" 2>&1); then
			why="cannot create a veth pair (kernel without veth?): $err"
		elif ! err=$(ip netns exec "$NS_SRC" tc qdisc add dev "$IF_SRC" root tbf rate 1gbit burst 262144 latency 20ms 2>&1); then
			why="cannot add a tbf qdisc (kernel without sch_tbf?): $err"
		fi
		ip netns del "$NS_SRC" 2>/dev/null || true
		ip netns del "$NS_DST" 2>/dev/null || true
	fi
	if [ -n "$why" ]; then
		echo "$why"
		exit 77
	fi
	echo "ok: network namespaces, veth and tbf work here"
	exit 0
	;;
destroy)
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	MADE=(1)
	teardown
	exit $?
	;;
create)
	lock
	trap 'teardown' EXIT
	trap 'on_signal INT' INT
	trap 'on_signal TERM' TERM
	[ "${#RATE_LIST[@]}" -eq 1 ] || die "create takes one --rate"
	make_link "${RATE_LIST[0]}"
	trap - EXIT INT TERM
	echo "src: ip netns exec $NS_SRC ...   ($SRC_IP)"
	echo "dst: ip netns exec $NS_DST ...   ($DST_IP)"
	echo "remove: $0 destroy --name $NAME"
	exit 0
	;;
esac

# run / bench
lock
command -v iperf3 >/dev/null || die "iperf3 is not installed (scripts/setup.sh installs it)"
command -v python3 >/dev/null || die "python3 is not installed (scripts/setup.sh installs it)"
trap 'teardown' EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
make_link "${RATE_LIST[0]}"
start_iperf_server $(((TIMEOUT + 30) * ${#RATE_LIST[@]}))

export VFM_NS_SRC=$NS_SRC VFM_NS_DST=$NS_DST VFM_NS_SRC_IP=$SRC_IP VFM_NS_DST_IP=$DST_IP \
	VFM_NS_IPERF=$DST_IP:$IPERF_PORT VFM_NS_PEER_CMD="ip netns exec $NS_DST "

status=0
if [ "$CMD" = run ]; then
	for r in "${RATE_LIST[@]}"; do
		shape "$r" replace
		export VFM_NS_RATE=$r
		if [ "$IPERF_S" -gt 0 ]; then
			log "iperf3 through $SHAPE: $(iperf_once "$IPERF_S") MB/s"
		fi
		run_in_src "$@" || status=$?
	done
	exit "$status"
fi

# bench: vfmig-bench in the source namespace, the receivers in the other.
BENCH=$(readlink -f "$1")
shift
[ -x "$BENCH" ] || die "not executable: $BENCH"
[ -n "$VFMIG" ] || VFMIG=$(dirname "$BENCH")/vfmig
VFMIG=$(readlink -f "$VFMIG")
[ -x "$VFMIG" ] || die "not executable: $VFMIG (--vfmig)"
mkdir -p "$OUT"
OUT=$(readlink -f "$OUT")
SECRET_DIR=$(mktemp -d)
trap 'teardown; rm -rf "$SECRET_DIR"' EXIT
head -c 48 /dev/urandom | base64 -w0 >"$SECRET_DIR/secret"
chmod 600 "$SECRET_DIR/secret"
outs=()
for r in "${RATE_LIST[@]}"; do
	shape "$r" replace
	log "vfmig-bench through $SHAPE -> $OUT/$r"
	rm -rf "${OUT:?}/$r"
	# Ours first: the caller's arguments come after and win.
	run_in_src "$BENCH" --peer "$DST_IP" --port 7470 --secret-file "$SECRET_DIR/secret" \
		--peer-cmd "ip netns exec $NS_DST $VFMIG {ARGS}" \
		--iperf-server "$DST_IP:$IPERF_PORT" --xport-perf none --vfmig "$VFMIG" \
		--out "$OUT/$r" "$@" || status=$?
	outs+=("$r=$OUT/$r/results.json")
done
python3 - "${outs[@]}" <<'PY' || true
import json, os, sys
print("\nshaped-link summary (downtime vs the wire floor = final bytes / iperf3 goodput, same run):")
print("%-7s %6s %5s %5s %3s %9s %8s %8s %8s %8s %7s %6s" % ("rate", "iperf3", "size", "dirty", "rep",
      "final_MiB", "floor", "downtime", "final", "commit", "meas/fl", "fin/fl"))
def sz(b):
    for u, m in (("G", 1 << 30), ("M", 1 << 20)):
        if b >= m and b % m == 0:
            return "%d%s" % (b // m, u)
    return str(b)
def f(v, fmt="%.1f"):
    return fmt % v if v is not None else "-"
for arg in sys.argv[1:]:
    rate, path = arg.split("=", 1)
    if not os.path.exists(path):
        print("%-7s (no results.json)" % rate)
        continue
    o = json.load(open(path))
    ip = {p["streams"]: p["Bps"] for p in o["peers"].get("iperf3", [])}
    for r in o["runs"]:
        if r.get("skipped"):
            continue
        big = (r.get("final_bytes") or 0) >= 1048576 and r.get("floor_ms")
        print("%-7s %6.1f %5s %5s %3s %9.1f %8s %8s %8s %8s %7s %6s%s" % (
            rate, ip.get(r["streams"], 0) / 1e6, sz(r["size"]),
            sz(r["dirty_Bps"]) if r["dirty_Bps"] else "0", "%dx%d" % (r["streams"], r["rep"]),
            (r.get("final_bytes") or 0) / 1048576, f(r.get("floor_ms")), f(r.get("downtime_ms")),
            f(r.get("final_transfer_ms")), f(r.get("commit_ms")),
            f(r["downtime_ms"] / r["floor_ms"], "%.2f") if big else "-",
            f(r["final_transfer_ms"] / r["floor_ms"], "%.2f") if big and r.get("final_transfer_ms") is not None else "-",
            "" if r["ok"] else "  FAILED: " + r.get("why", "")))
print("(iperf3 in MB/s: the mean of its runs before and after the matrix, 1 stream; times in ms; "
      "floor = final bytes / iperf3 goodput; meas/fl = downtime / floor; fin/fl = the final "
      "transfer alone / floor; rep = streams x repetition)")
PY
# The downtime model across the rates: its error per cell and the projection.
MODEL=$(dirname "$BENCH")/vfm-bench-model
if [ -x "$MODEL" ]; then
	jsons=()
	for o in "${outs[@]}"; do [ ! -e "${o#*=}" ] || jsons+=("${o#*=}"); done
	if [ "${#jsons[@]}" -gt 0 ]; then
		echo
		"$MODEL" --out "$OUT/model" "${jsons[@]}" || status=$?
	fi
fi
exit "$status"
