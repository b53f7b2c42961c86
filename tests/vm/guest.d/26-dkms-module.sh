#!/bin/bash
# The module as DKMS builds it for an operator: deploy.dkms (ctest -R
# deploy.dkms, tests/deploy/test_dkms.sh) keeps a copy of what `dkms install`
# put in updates/dkms at $VFM_BUILD/dkms-out/vfmig_stub.ko. This suite swaps
# the module the driver loaded for that file, checks that the kernel runs
# that file (srcversion when it has one, the GNU build ID), binds both
# edu functions to it (probe: vfmig sysfs, RUNNING), migrates A -> B with the
# agent (digests equal), then always loads the driver's module again and
# rebinds the functions as they were, and checks that too.
# Without the file: a skip, or with CI=true a failure (scripts/setup.sh
# installs dkms, and deploy.dkms runs before the guest).
# vfm-timeout: 240
set -uo pipefail
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

dko=$VFM_BUILD/dkms-out/vfmig_stub.ko
if [ ! -f "$dko" ]; then
	why="no $dko (made by ctest -R deploy.dkms in the build tree, which needs dkms)"
	if [ "${CI:-}" = true ]; then
		vfm_not_ok dkms/module-present "$why"
		exit 1
	fi
	vfm_skip dkms/module-present "$why"
	exit 77
fi
vfm_ok dkms/module-present
[ -f "${dko%.ko}.info" ] && sed 's/^/dkms-out: /' "${dko%.ko}.info"
if [ "${VFM_HAVE_STUB:-0}" != 1 ]; then
	vfm_skip dkms/swap "${VFM_STUB_REASON:-vfmig_stub.ko not loaded}"
	exit 77
fi
kver=$(uname -r)
vermagic=$(modinfo -F vermagic "$dko" 2>/dev/null)
case $vermagic in
"$kver "*) vfm_ok dkms/vermagic ;;
*)
	vfm_not_ok dkms/vermagic "DKMS built for '$vermagic', the guest runs $kver"
	exit 1
	;;
esac

M=$VFM_STUB_MOD
DRV=$VFM_STUB_DRV
A=$VFM_EDU_A
B=$VFM_EDU_B
bin=$VFM_BUILD/bin/vfmig
work=$(mktemp -d /tmp/dkms-module.XXXXXX)

# file_buildid KO / loaded_buildid: the GNU build ID (hex), empty if none
file_buildid() { readelf -n "$1" 2>/dev/null | sed -n 's/.*Build ID: *//p' | head -n1; }
loaded_buildid() {
	# the note: namesz, descsz, type (4 bytes each), "GNU\0", then the ID
	od -An -tx1 -v -j16 "/sys/module/$M/notes/.note.gnu.build-id" 2>/dev/null | tr -d ' \n'
}
# is_loaded KO: the loaded module is KO, by srcversion (a module has one
# only with MODULE_VERSION) and by GNU build ID; at least one must compare.
# Prints why not.
is_loaded() {
	local want got n=0
	want=$(modinfo -F srcversion "$1" 2>/dev/null)
	if [ -n "$want" ]; then
		got=$(cat "/sys/module/$M/srcversion" 2>/dev/null)
		if [ "$want" != "$got" ]; then
			echo "srcversion loaded '$got', $1 '$want'"
			return 1
		fi
		n=1
	fi
	want=$(file_buildid "$1")
	got=$(loaded_buildid)
	if [ -n "$want" ] && [ -n "$got" ]; then
		if [ "$want" != "$got" ]; then
			echo "build ID loaded $got, $1 $want"
			return 1
		fi
		n=$((n + 1))
	fi
	if [ "$n" = 0 ]; then
		echo "nothing to compare: no srcversion in $1, build ID '$want' (file) '$got' (loaded)"
		return 1
	fi
	return 0
}
echo "driver's module: $VFM_KO srcversion '$(modinfo -F srcversion "$VFM_KO")' build ID $(file_buildid "$VFM_KO")"
echo "DKMS module:     $dko srcversion '$(modinfo -F srcversion "$dko")' build ID $(file_buildid "$dko")"
echo "loaded now:      srcversion '$(cat "/sys/module/$M/srcversion" 2>/dev/null)' build ID $(loaded_buildid)"
[ "$(file_buildid "$VFM_KO")" != "$(file_buildid "$dko")" ] ||
	echo "(both files have the same build ID: the same code, built twice)"

# What to give back: each edu function's driver as found.
edus=()
for b in "$VFM_EDU_A" "$VFM_EDU_B" "${VFM_EDU_C:-}" "${VFM_EDU_D:-}"; do
	[ -n "$b" ] && edus+=("$b")
done
declare -A was
bound=()
for b in "${edus[@]}"; do
	was[$b]=$(vfm_driver_of "$b")
	[ "${was[$b]}" = "$DRV" ] && bound+=("$b")
done
echo "bound to $DRV at start: ${bound[*]}"

# unbind_all: every edu function off the stub, driver_override cleared, so
# that a module being loaded binds nothing by itself.
unbind_all() {
	local b
	for b in "${edus[@]}"; do
		[ "$(vfm_driver_of "$b")" = "$DRV" ] && vfm_release "$b"
	done
	return 0
}

# shellcheck disable=SC2317 # called by the EXIT trap
restore() {
	local b why=
	unbind_all
	if [ -d "/sys/module/$M" ] && ! rmmod "$M" 2>"$work/rmmod2.err"; then
		why="rmmod of the DKMS module failed: $(cat "$work/rmmod2.err")"
	elif ! vfm_load_stub; then
		why=$VFM_STUB_REASON
	else
		for b in "${bound[@]}"; do
			vfm_bind "$b" "$DRV" || why="$why $b not re-bound ('$(vfm_driver_of "$b")')"
		done
	fi
	if [ -z "$why" ]; then
		why=$(is_loaded "$VFM_KO") || why="not the driver's module: $why"
	fi
	if [ -z "$why" ]; then
		for b in "${edus[@]}"; do
			[ "$(vfm_driver_of "$b")" = "${was[$b]}" ] ||
				why="$why $b bound to '$(vfm_driver_of "$b")', was '${was[$b]}'"
		done
	fi
	cp "$work"/*.log "$work"/*.json "$VFM_OUT/" 2>/dev/null
	rm -rf "$work"
	if [ -n "$why" ]; then
		vfm_not_ok dkms/restore "$why"
		exit 1
	fi
	vfm_ok dkms/restore
}
trap restore EXIT

# 1. swap: the driver's module out, the DKMS one in
unbind_all
if ! rmmod "$M" 2>"$work/rmmod.err"; then
	vfm_not_ok dkms/rmmod "$(cat "$work/rmmod.err")"
	exit 1
fi
# shellcheck disable=SC2086 # VFM_KO_PARAMS is a list of parameters
if ! insmod "$dko" ${VFM_KO_PARAMS:-} 2>"$work/insmod.err"; then
	vfm_not_ok dkms/insmod "$(cat "$work/insmod.err") $(dmesg | tail -n 3 | tr '\n' ' ')"
	exit 1
fi
vfm_ok dkms/insmod
echo "loaded now:      srcversion '$(cat "/sys/module/$M/srcversion" 2>/dev/null)' build ID $(loaded_buildid)"
if why=$(is_loaded "$dko"); then
	vfm_ok dkms/loaded-is-dkms-file
else
	vfm_not_ok dkms/loaded-is-dkms-file "$why"
fi
if [ -e "/sys/module/$M/drivers/pci:$DRV" ]; then
	vfm_ok dkms/pci-driver
else
	vfm_not_ok dkms/pci-driver "no pci:$DRV under /sys/module/$M/drivers"
fi
# with driver_override cleared, loading binds nothing by itself
early=
for b in "${edus[@]}"; do
	[ "$(vfm_driver_of "$b")" = "$DRV" ] && early="$early $b"
done
vfm_check dkms/nothing-bound-at-load test -z "$early"

# 2. probe: both functions bound, vfmig sysfs, RUNNING
probe_ok=1
for b in "$A" "$B"; do
	st=
	if vfm_bind "$b" "$DRV"; then
		st=$(cat "/sys/bus/pci/devices/$b/vfmig/mig_state" 2>/dev/null)
	fi
	if [ "$st" = RUNNING ]; then
		vfm_ok "dkms/probe/$b"
	else
		vfm_not_ok "dkms/probe/$b" "driver '$(vfm_driver_of "$b")', vfmig/mig_state '$st'"
		probe_ok=0
	fi
done

# 3. the agent: A -> B over TCP on loopback, digests equal
if [ ! -x "$bin" ]; then
	vfm_skip dkms/migrate "vfmig not built in $VFM_BUILD"
elif [ "$probe_ok" != 1 ]; then
	vfm_not_ok dkms/migrate "not run: probe failed"
else
	head -c 48 /dev/urandom | base64 -w0 >"$work/secret"
	chmod 600 "$work/secret"
	"$bin" recv --device "vfio:$B" --listen 127.0.0.1:7626 --secret-file "$work/secret" \
		--log "$work/dkms-dst.log" --stats-json "$work/dkms-dst.json" \
		--timeout-s 60 --wait-s 60 >"$work/dst.out" 2>&1 &
	rpid=$!
	sleep 1
	timeout 120 "$bin" send --device "vfio:$A" --to 127.0.0.1:7626 --secret-file "$work/secret" \
		--log "$work/dkms-src.log" --stats-json "$work/dkms-src.json" \
		--timeout-s 60 >"$work/src.out" 2>&1
	src_rc=$?
	timeout 60 tail --pid="$rpid" -f /dev/null
	wait "$rpid"
	dst_rc=$?
	if [ "$src_rc-$dst_rc" != 0-0 ]; then
		vfm_not_ok dkms/migrate "send $src_rc recv $dst_rc: $(tail -n 2 "$work/dkms-src.log" "$work/dkms-dst.log" | tr '\n' ' ' | head -c 400)"
	elif why=$(python3 - "$work/dkms-src.json" "$work/dkms-dst.json" <<'PY'
import json, sys
s, d = (json.load(open(p)) for p in sys.argv[1:3])
if not (s.get("verified") and s.get("digest_match")):
    print(f"not verified: verified={s.get('verified')} digest_match={s.get('digest_match')}")
    sys.exit(1)
if not s.get("state_digest") or s["state_digest"] != d.get("state_digest"):
    print(f"source {s.get('state_digest')} destination {d.get('state_digest')}")
    sys.exit(1)
print(f"digest {s['state_digest']}, {s.get('total_ms')} ms")
PY
	); then
		vfm_ok dkms/migrate
		echo "migrate: $why"
	else
		vfm_not_ok dkms/migrate "$why"
	fi
fi
exit 0
