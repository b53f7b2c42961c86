#!/bin/bash
# The guest environment itself: IOMMU, the edu devices (A and B bound, two
# more unbound), vfio, eth0 and rxe0. Everything after this suite relies on it.
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

if [ -n "$(ls /sys/kernel/iommu_groups)" ]; then
	vfm_ok iommu-groups
else
	vfm_not_ok iommu-groups "no IOMMU groups: intel-iommu is not active"
fi

if [ -n "$VFM_EDU_A" ] && [ -n "$VFM_EDU_B" ]; then
	vfm_ok two-edu-devices
else
	vfm_not_ok two-edu-devices "expected two 1234:11e8 devices, found '${VFM_EDU_A}' '${VFM_EDU_B}'"
fi
if [ -n "$VFM_EDU_A_GROUP" ] && [ -n "$VFM_EDU_B_GROUP" ] &&
	[ "$VFM_EDU_A_GROUP" != "$VFM_EDU_B_GROUP" ]; then
	vfm_ok edu-own-groups
	n=$(ls "/sys/kernel/iommu_groups/$VFM_EDU_A_GROUP/devices" | wc -l)
	if [ "$n" -eq 1 ]; then
		vfm_ok edu-group-viable
	else
		vfm_not_ok edu-group-viable "group $VFM_EDU_A_GROUP holds $n devices"
	fi
else
	vfm_not_ok edu-own-groups "groups '$VFM_EDU_A_GROUP' and '$VFM_EDU_B_GROUP'"
	vfm_skip edu-group-viable "no separate groups"
fi

# functions 3 and 4 (48-device-set), each in a group of its own too
groups=$(for g in "$VFM_EDU_A_GROUP" "$VFM_EDU_B_GROUP" "$VFM_EDU_C_GROUP" "$VFM_EDU_D_GROUP"; do
	[ -n "$g" ] && echo "$g"
done | sort -u | wc -l)
if [ -n "$VFM_EDU_C" ] && [ -n "$VFM_EDU_D" ] && [ "$groups" = 4 ]; then
	vfm_ok four-edu-functions
else
	vfm_not_ok four-edu-functions "expected four 1234:11e8 functions in four groups, found '$VFM_EDU_A' '$VFM_EDU_B' '$VFM_EDU_C' '$VFM_EDU_D' in $groups groups"
fi

if [ "$VFM_HAVE_VFIO" = 1 ]; then
	vfm_ok vfio-loaded
else
	vfm_not_ok vfio-loaded "$VFM_VFIO_REASON"
fi

if [ "$VFM_HAVE_STUB" = 1 ]; then
	vfm_ok stub-bound
	echo "edu A $VFM_EDU_A group $VFM_EDU_A_GROUP driver $(vfm_driver_of "$VFM_EDU_A")"
	echo "edu B $VFM_EDU_B group $VFM_EDU_B_GROUP driver $(vfm_driver_of "$VFM_EDU_B")"
elif [ -z "$VFM_KO" ]; then
	vfm_skip stub-bound "$VFM_STUB_REASON"
else
	vfm_not_ok stub-bound "$VFM_STUB_REASON"
fi

if [ "$VFM_HAVE_NET" = 1 ] && ip -4 addr show dev "$VFM_NETDEV" | grep -q "$VFM_GUEST_IP"; then
	vfm_ok eth0-up
else
	vfm_not_ok eth0-up "$VFM_NETDEV has no address $VFM_GUEST_IP"
fi

if [ "$VFM_HAVE_RXE" = 1 ]; then
	vfm_ok rxe0-active
	ibv_devinfo -d "$VFM_RXE" | grep -E 'state|active_mtu' | sed 's/^[ \t]*/rxe0: /'
else
	vfm_not_ok rxe0-active "$VFM_RXE_REASON"
fi
