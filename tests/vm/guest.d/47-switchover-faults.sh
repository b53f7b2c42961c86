#!/bin/bash
# The switchover fault matrix (tests/integration/fault_matrix.py) with the
# real driver: vfio -> vfio between the two edu functions bound to
# vfmig_stub, over tcp and rdma, for the phases around the switchover
# (the LOADED/RUN window, RUN sent, after COMMIT) and the faults that act
# on processes and the control connection: kill -9 of either agent,
# SIGTERM of the destination (the source's is in the host matrix), the control
# connection reset (ss -K) and black-holed (nftables).
# Each cell: never both running, the source intact whenever it runs again,
# exit codes as documented.
# vfm-timeout: 1500
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

bin=$VFM_BUILD/bin/vfmig
if [ ! -x "$bin" ]; then
	echo "skip switchover-faults - vfmig not built in $VFM_BUILD"
	exit 77
fi
if [ "${VFM_HAVE_STUB:-0}" != 1 ]; then
	echo "skip switchover-faults - ${VFM_STUB_REASON:-vfmig_stub.ko not loaded}"
	exit 77
fi
A=$VFM_EDU_A
B=$VFM_EDU_B
knob() { echo "/sys/bus/pci/devices/$1/vfmig/$2"; }
rate_a=$(cat "$(knob "$A" dirty_rate)")
rate_b=$(cat "$(knob "$B" dirty_rate)")
restore() {
	echo "$rate_a" >"$(knob "$A" dirty_rate)"
	echo "$rate_b" >"$(knob "$B" dirty_rate)"
}
trap restore EXIT
# The source's state at open is then the same every time.
echo 0 >"$(knob "$A" dirty_rate)"
echo 0 >"$(knob "$B" dirty_rate)"
ip link set lo up 2>/dev/null
xports=(tcp)
if [ "${VFM_HAVE_RXE:-0}" = 1 ]; then
	xports+=(rdma)
else
	vfm_not_ok switchover-faults/rdma "no rxe0: ${VFM_RXE_REASON:-unknown}"
fi
for xp in "${xports[@]}"; do
	addr=127.0.0.1
	[ "$xp" = rdma ] && addr=$VFM_GUEST_IP
	out=$(VFM_PORT=7950 python3 "$VFM_ROOT/tests/integration/fault_matrix.py" "$bin" \
		--src "vfio:$A" --dst "vfio:$B" --transport "$xp" --addr "$addr" \
		--timeout-s 6 --jobs 1 --only go_window,run_sent,after_commit \
		--faults kill9_src,kill9_dst,term_dst,ctl_reset,blackhole 2>&1)
	rc=$?
	echo "$out" | sed 's/^/# /'
	while read -r phase fault send recv result; do
		case $phase in phase | '#'* | '') continue ;; esac
		[ -n "$fault" ] || continue
		if [ "$result" = ok ]; then
			vfm_ok "$xp/$phase/$fault"
		else
			vfm_not_ok "$xp/$phase/$fault" "send $send recv $recv ${result#FAIL: }"
		fi
	done < <(echo "$out" | grep -E '^[a-z_]+ +[a-z0-9_]+ +-?[0-9]+ +-?[0-9]+ ')
	[ "$rc" = 0 ] || [ "$rc" = 1 ] || vfm_not_ok "switchover-faults/$xp" "the matrix exited $rc"
done
