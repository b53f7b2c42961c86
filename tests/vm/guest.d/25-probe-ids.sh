#!/bin/bash
# vfmig_stub's ids= parameter adds dynamic ids, which the PCI core matches
# against every unbound function: probe must refuse one that is not edu; a
# list of ids is added whole and the parameter reads back as given.
# Reloads the module with ids= naming an unbound non-edu function of the
# guest, then reloads it as before and re-binds both edu devices.
# vfm-timeout: 120
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

name=probe/ids-non-edu-refused
if [ "$VFM_HAVE_STUB" != 1 ]; then
	vfm_skip "$name" "${VFM_STUB_REASON:-vfmig_stub.ko not loaded}"
	exit 77
fi

# An endpoint (header type 0) that no driver holds and that is not edu.
victim='' id=''
for d in /sys/bus/pci/devices/*; do
	[ -e "$d/driver" ] && continue
	v=$(cat "$d/vendor") dv=$(cat "$d/device")
	[ "$v:$dv" = 0x1234:0x11e8 ] && continue
	hdr=$(od -An -tx1 -j14 -N1 "$d/config" 2>/dev/null | tr -d ' ')
	[ "$((0x${hdr:-ff} & 0x7f))" = 0 ] || continue
	victim=${d##*/} id=${v#0x}:${dv#0x}
	break
done
if [ -z "$victim" ]; then
	vfm_skip "$name" "no unbound non-edu PCI function in this guest"
	exit 77
fi
echo "non-edu function $victim ($id), unbound"

rmmod "$VFM_STUB_MOD" || {
	vfm_not_ok "$name" "rmmod $VFM_STUB_MOD failed"
	exit 1
}
dmesg -C
# a second id that matches no function here: the list is parsed whole
# shellcheck disable=SC2086 # VFM_KO_PARAMS is a list of parameters
if insmod "$VFM_KO" ${VFM_KO_PARAMS:-} "ids=$id,1234:fffe" 2>/tmp/vfm-ids.err; then
	drv=$(vfm_driver_of "$victim")
	log=$(dmesg)
	got=$(cat "/sys/module/$VFM_STUB_MOD/parameters/ids" 2>/dev/null)
	if [ "$got" = "$id,1234:fffe" ] && grep -q "added id 1234:fffe" <<<"$log"; then
		vfm_ok probe/ids-list-reads-back
	else
		vfm_not_ok probe/ids-list-reads-back "parameters/ids reads '$got', want '$id,1234:fffe' (and both ids added)"
	fi
	if [ -n "$drv" ]; then
		vfm_not_ok "$name" "$victim ($id) was bound to '$drv'"
	elif ! grep -q "added id $id" <<<"$log"; then
		vfm_not_ok "$name" "the module did not add id $id: $(tr '\n' ' ' <<<"$log" | tail -c 300)"
	elif ! grep -q "$victim.*not an edu function" <<<"$log"; then
		vfm_not_ok "$name" "no refusal logged for $victim"
	else
		vfm_ok "$name"
		grep "$victim" <<<"$log" | sed 's/^/dmesg: /'
	fi
	vfm_unbind "$victim"
	rmmod "$VFM_STUB_MOD"
else
	vfm_not_ok "$name" "insmod ids=$id,1234:fffe failed: $(cat /tmp/vfm-ids.err)"
fi

# As the suites after this one expect it: loaded without ids=, edu bound.
if ! vfm_load_stub || ! vfm_bind_edu; then
	echo "probe-ids: devices not re-bound: $VFM_STUB_REASON" >&2
	exit 1
fi
