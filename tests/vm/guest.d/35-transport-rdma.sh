#!/bin/bash
# The rdma transport on rxe0: its unit tests (test_rdma), then its
# throughput next to ib_write_bw in the same boot at the same message size.
# vfm-timeout: 600
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

t=$VFM_BUILD/tests/unit/transport/test_rdma
perf=$VFM_BUILD/bin/vfm-xport-perf
if [ ! -x "$t" ]; then
	echo "skip transport-rdma - test_rdma not built in $VFM_BUILD"
	exit 77
fi
if [ "${VFM_HAVE_RXE:-0}" != 1 ]; then
	vfm_not_ok transport-rdma "no rxe0: ${VFM_RXE_REASON:-unknown}"
	exit 1
fi
export VFM_RDMA_ADDR=$VFM_GUEST_IP

# One result line per cmocka test.
out=$(timeout 400 "$t" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
echo "$out" | sed -n 's/^\[ *OK *\] \(.*\)$/ok unit\/\1/p'
echo "$out" | sed -n 's/^\[ *FAILED *\] \([a-z0-9_]*\)$/not ok unit\/\1 - see the log/p' | sort -u
[ "$rc" = 0 ] || vfm_not_ok unit "test_rdma exited $rc"

# Delete the rxe link in the middle of a transfer: both ends must fail
# with an error (no hang), then rxe0 comes back for the suites after us.
if [ -x "$perf" ]; then
	"$perf" --transport rdma --addr "$VFM_GUEST_IP" --size 4 --streams 2 \
		--seg 1048576 --depth 16 --buf 64 --timeout-ms 5000 >/tmp/xp-del.out 2>&1 &
	pid=$!
	sleep 3
	rdma link delete "$VFM_RXE"
	t0=$(date +%s)
	timeout 60 tail --pid=$pid -f /dev/null
	wait $pid
	rc=$?
	secs=$(($(date +%s) - t0))
	sed 's/^/# /' /tmp/xp-del.out
	if [ "$rc" != 0 ] && [ "$secs" -lt 30 ] &&
		grep -q 'source poll failed' /tmp/xp-del.out &&
		grep -q 'destination poll failed' /tmp/xp-del.out; then
		vfm_ok link-delete
	else
		vfm_not_ok link-delete "status $rc after ${secs}s"
	fi
	vfm_setup_rxe || vfm_not_ok rxe-restore "$VFM_RXE_REASON"
fi

# Throughput, 1 MiB messages: ours (RDMA WRITE + descriptor SEND) and
# ib_write_bw, one and two QPs.
[ -x "$perf" ] || exit 0
command -v ib_write_bw >/dev/null || {
	vfm_skip measure "ib_write_bw (perftest) is not installed"
	exit 0
}
for q in 1 2; do
	ours=$(timeout 120 "$perf" --transport rdma --addr "$VFM_GUEST_IP" --size 0.125 \
		--streams $q --seg 1048576 --depth 16 --buf 64 |
		sed -n 's/.*"GBps":\([0-9.]*\).*/\1/p')
	timeout 120 ib_write_bw -d "$VFM_RXE" -s 1048576 -n 128 -q $q -F >/dev/null 2>&1 &
	srv=$!
	sleep 1
	ref=$(timeout 120 ib_write_bw -d "$VFM_RXE" -s 1048576 -n 128 -q $q -F "$VFM_GUEST_IP" 2>/dev/null |
		awk '$1 == 1048576 { print $4 }')
	wait $srv
	[ -n "$ours" ] && vfm_measure "rdma-q$q-ours" "$(awk -v g="$ours" 'BEGIN { printf "%.1f", g * 1e9 / 1048576 }')" MiB/s
	[ -n "$ref" ] && vfm_measure "rdma-q$q-ib_write_bw" "$ref" MiB/s
	if [ -n "$ours" ] && [ -n "$ref" ]; then
		vfm_measure "rdma-q$q-ratio" "$(awk -v g="$ours" -v r="$ref" 'BEGIN { printf "%.2f", g * 1e9 / 1048576 / r }')" x
	fi
done
exit 0
