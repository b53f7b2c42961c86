#!/bin/bash
# Migrations of a dirtying device must arrive intact: the workload on at
# both ends (the destination's runs as soon as it starts), over tcp and rdma
# with 1-4 streams/QPs, sim -> sim and vfio -> vfio (vfmig_stub). Each cell
# asserts that both agents exit 0 and that the digests, compared before the
# destination ran, are equal (the source's "verified" and "digest_match").
# vfm-timeout: 1200
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

bin=$VFM_BUILD/bin/vfmig
if [ ! -x "$bin" ]; then
	echo "skip dirty-digest - vfmig not built in $VFM_BUILD"
	exit 77
fi
IP=$VFM_GUEST_IP
A=$VFM_EDU_A
B=$VFM_EDU_B
knob() { echo "/sys/bus/pci/devices/$1/vfmig/$2"; }
work=$(mktemp -d /tmp/dirty-digest.XXXXXX)
head -c 48 /dev/urandom | base64 -w0 >"$work/secret"
chmod 600 "$work/secret"
stub=0
if [ "${VFM_HAVE_STUB:-0}" = 1 ]; then
	stub=1
	rate_a=$(cat "$(knob "$A" dirty_rate)")
	rate_b=$(cat "$(knob "$B" dirty_rate)")
fi
restore() {
	if [ "$stub" = 1 ]; then
		echo "$rate_a" >"$(knob "$A" dirty_rate)"
		echo "$rate_b" >"$(knob "$B" dirty_rate)"
	fi
	mkdir -p "$VFM_OUT/45-dirty-digest"
	cp "$work"/*.json "$work"/*.out "$VFM_OUT/45-dirty-digest/" 2>/dev/null
	rm -rf "$work"
}
trap restore EXIT

port=7900
# cell NAME TRANSPORT STREAMS DST SRC: one migration, checked.
cell() {
	local name=$1 xp=$2 n=$3 dspec=$4 sspec=$5 addr rpid src_rc dst_rc
	port=$((port + 1))
	addr=127.0.0.1
	[ "$xp" = rdma ] && addr=$IP
	"$bin" recv --device "$dspec" --listen "$addr:$port" --transport "$xp" \
		--secret-file "$work/secret" --log "$work/$name-dst.log" \
		--stats-json "$work/$name-dst.json" --timeout-s 60 --wait-s 60 \
		>"$work/$name-dst.out" 2>&1 &
	rpid=$!
	timeout 400 "$bin" send --device "$sspec" --to "$addr:$port" --transport "$xp" \
		--secret-file "$work/secret" --log "$work/$name-src.log" --streams "$n" \
		--stats-json "$work/$name-src.json" --timeout-s 60 >"$work/$name-src.out" 2>&1
	src_rc=$?
	timeout 120 tail --pid="$rpid" -f /dev/null
	wait "$rpid"
	dst_rc=$?
	if [ "$src_rc-$dst_rc" != 0-0 ]; then
		vfm_not_ok "$name" "send $src_rc recv $dst_rc: $(tail -n 3 "$work/$name-src.log" | head -c 400)"
		return
	fi
	if python3 - "$work/$name-src.json" "$work/$name-dst.json" <<'PY'; then
import json, sys
s = json.load(open(sys.argv[1]))
d = json.load(open(sys.argv[2]))
assert s["verified"] and s["digest_match"], s
assert s["state_digest"] == d["state_digest"] == s["destination_state_digest"]
print("# %s: %d iterations, %.1f MiB, downtime %.1f ms" % (
    sys.argv[1].rsplit("/", 1)[1], s["iterations"], s["bytes"] / 1048576.0, s["downtime_ms"]))
PY
		vfm_ok "$name"
	else
		vfm_not_ok "$name" "digests differ or were not verified"
	fi
}

xports=(tcp)
if [ "${VFM_HAVE_RXE:-0}" = 1 ]; then
	xports+=(rdma)
else
	vfm_not_ok dirty-digest/rdma "no rxe0: ${VFM_RXE_REASON:-unknown}"
fi
for xp in "${xports[@]}"; do
	for n in 1 2 3 4; do
		spec="sim:size=40M,dirty=3M,model=example.org/rx,version=4.2,compatible=4.0-"
		cell "sim-$xp-$n" "$xp" "$n" "$spec,seed=$n" "$spec,seed=$((n + 10))"
	done
done
if [ "$stub" = 1 ]; then
	for xp in "${xports[@]}"; do
		for n in 1 2 4; do
			# The kernel's workload at a high rate for this guest, on
			# both devices.
			echo $((n * 4000000)) >"$(knob "$A" dirty_rate)"
			echo $((n * 4000000)) >"$(knob "$B" dirty_rate)"
			cell "vfio-$xp-$n" "$xp" "$n" "vfio:$B" "vfio:$A"
			cell "vfio-back-$xp-$n" "$xp" "$n" "vfio:$A" "vfio:$B"
		done
	done
else
	vfm_not_ok dirty-digest/vfio "${VFM_STUB_REASON:-vfmig_stub.ko not loaded}"
fi
