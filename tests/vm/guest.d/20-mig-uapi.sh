#!/bin/bash
# vfmig_stub.ko through the VFIO migration uAPI v2: mig_uapi_test on the two
# edu devices (A: source, B: destination). It unloads and reloads the
# module at its end (the "unbind" test), re-binding both devices.
# vfm-timeout: 1500
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

bin=$VFM_BUILD/tests/vm/mig_uapi_test
if [ ! -x "$bin" ]; then
	echo "skip mig-uapi - mig_uapi_test not built in $VFM_BUILD"
	exit 77
fi
if [ "$VFM_HAVE_STUB" != 1 ]; then
	exec "$bin" --skip-all "${VFM_STUB_REASON:-vfmig_stub.ko not built}"
fi
args=(--a "$VFM_EDU_A" --b "$VFM_EDU_B" --driver "$VFM_STUB_DRV"
	--module "$VFM_STUB_MOD" --ko "$VFM_KO" --rxe "${VFM_RXE:-rxe0}")
[ -n "${VFM_KO_PARAMS:-}" ] && args+=(--ko-params "$VFM_KO_PARAMS")
[ -n "${VFM_MIG_ONLY:-}" ] && args+=(--only "$VFM_MIG_ONLY")
[ -n "${VFM_MIG_LARGE_MIB:-}" ] && args+=(--large-mib "$VFM_MIG_LARGE_MIB")
"$bin" "${args[@]}"
rc=$?
# The unbind test reloads the module: make sure both devices are bound again
# for the suites after this one.
vfm_bind_edu >/dev/null 2>&1 || echo "mig-uapi: devices not re-bound: $VFM_STUB_REASON" >&2
exit $rc
