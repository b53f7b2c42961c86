#!/bin/bash
# Guest smoke test of vfmig_stub.ko: load, bind both edu devices, run
# vfmig_smoke. From the host:
#   gcc -O2 -Wall -o BUILD/vfmig_smoke kernel/tests/vfmig_smoke.c
#   tests/vm/run.sh --build BUILD --ko kernel/vfmig_stub.ko \
#       --script kernel/tests/smoke.sh BUILD/vfmig_smoke [BIG_MIB]
# BIG_MIB (e.g. 4096): also migrate a device-memory area of that size.
set -u
smoke=${1:?usage: smoke.sh PATH_TO_vfmig_smoke [BIG_MIB]}
[ -n "${2:-}" ] && export VFMIG_BIG_MIB=$2
[ -r /run/vfm-env ] && . /run/vfm-env
modprobe -a vfio vfio_iommu_type1 vfio_pci_core libcrc32c || exit 77
if [ ! -d /sys/module/vfmig_stub ]; then
	insmod "${VFM_KO:?no module}" || exit 1
fi
edus=()
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ] && edus+=("${d##*/}")
done
[ ${#edus[@]} -ge 2 ] || { echo "SKIP: two edu devices needed"; exit 77; }
args=()
for b in "${edus[@]:0:2}"; do
	d=/sys/bus/pci/devices/$b
	if [ "$(basename "$(readlink "$d/driver" 2>/dev/null)")" != vfmig_stub ]; then
		[ -e "$d/driver" ] && echo "$b" >"$d/driver/unbind"
		echo vfmig_stub >"$d/driver_override"
		echo "$b" >/sys/bus/pci/drivers_probe
	fi
	g=$(basename "$(readlink "$d/iommu_group")")
	args+=("$g" "$b")
	echo "$b: driver $(basename "$(readlink "$d/driver")"), group $g"
	for f in model version version_compatible features params/memory allowed/memory; do
		echo "  migration/$f = $(cat "$d/migration/$f")"
	done
done
ls /sys/bus/pci/devices/${args[1]}/vfmig/
"$smoke" "${args[@]}"
rc=$?
dmesg | grep -i vfmig | tail -20
exit $rc
