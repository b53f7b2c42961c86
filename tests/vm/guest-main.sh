#!/bin/bash
# PID 1 of the vfmig test guest, after switch_root onto the host's root.
#
# Reads /run/vfm-out/guest.env (written by run.sh), marks the boot time,
# then runs, per VFM_MODE: the guest test driver (suites), one script, or an
# interactive shell on the console. Powers the guest off at the end: never
# returns (PID 1 must not exit).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=${TERM:-dumb} LANG=C.UTF-8
VFM_OUT=/run/vfm-out
export VFM_OUT
# shellcheck source=/dev/null
. "$VFM_OUT/guest.env"

# Uptime at this point: the guest's boot time up to the test driver.
read -r up _ </proc/uptime
echo "$up" >"$VFM_OUT/boot-uptime"
echo "vfm-guest: userspace up after ${up}s (kernel $(uname -r))"

hostname vfm-guest 2>/dev/null
ulimit -l unlimited 2>/dev/null # memory registration (ibv_reg_mr)
ulimit -c 0

finish() {
	local rc=$1
	echo "$rc" >"$VFM_OUT/exit-code"
	dmesg >"$VFM_OUT/dmesg.txt" 2>/dev/null
	sync
	echo "vfm-guest: done (status $rc), powering off"
	busybox poweroff -f
	sleep 5
	echo o >/proc/sysrq-trigger
	sleep 60
}

cd "$VFM_ROOT" 2>/dev/null || cd /
case "$VFM_MODE" in
script)
	# shellcheck source=/dev/null
	. "$VFM_ROOT/tests/vm/guest-lib.sh"
	vfm_prepare >"$VFM_OUT/prepare.log" 2>&1
	echo "vfm-guest: environment: $(vfm_env_summary)"
	args=()
	[ -s "$VFM_OUT/script-args" ] && eval "args=($(cat "$VFM_OUT/script-args"))"
	bash "$VFM_OUT/script.sh" "${args[@]}" 2>&1 | tee "$VFM_OUT/script.log"
	finish "${PIPESTATUS[0]}"
	;;
shell)
	# shellcheck source=/dev/null
	. "$VFM_ROOT/tests/vm/guest-lib.sh"
	vfm_prepare 2>&1 | tee "$VFM_OUT/prepare.log"
	# shellcheck source=/dev/null
	. /run/vfm-env # vfm_prepare ran in the pipeline's subshell
	echo "vfm-guest: environment: $(vfm_env_summary)"
	echo "vfm-guest: interactive shell; 'exit' powers off"
	setsid -c bash -i </dev/ttyS0 >/dev/ttyS0 2>&1
	finish $?
	;;
*)
	bash "$VFM_ROOT/tests/vm/guest-driver.sh" 2>&1 | tee "$VFM_OUT/driver.log"
	finish "${PIPESTATUS[0]}"
	;;
esac
