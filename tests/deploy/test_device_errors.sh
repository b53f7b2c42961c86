#!/usr/bin/env bash
# The device-open failures an operator meets first, as `vfmig describe`
# prints them: each names the cause and the command that fixes it, and
# exits 5. Only the cases this machine can produce are run; each case it
# cannot produce is named (the guest, with an IOMMU and vfmig_stub, has
# them all). Never a silent pass: at least one case must run.
#
#   test_device_errors.sh VFMIG
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
vfmig=$1
work=$(mktemp -d /tmp/vfmig-deverr.XXXXXX)
trap 'rm -rf "$work"' EXIT
ran=0

expect() { # NAME SPEC REGEX: describe SPEC exits 5 with REGEX on stderr
	local rc=0
	"$vfmig" describe "$2" >/dev/null 2>"$work/err" || rc=$?
	[ "$rc" -eq 5 ] || { cat "$work/err"; fail "$1: exit $rc, expected 5"; }
	grep -Eq "$3" "$work/err" || { cat "$work/err"; fail "$1: message does not match /$3/"; }
	echo "ok: $1: $(cat "$work/err")"
	ran=$((ran + 1))
}

# Not a PCI function of this host.
bdf=0000:ff:1f.7
[ ! -e "/sys/bus/pci/devices/$bdf" ] || fail "$bdf exists here; pick another absent address"
expect "absent function" "vfio:$bdf" "There is no PCI function $bdf on this host"

# A function with no IOMMU group (a host without an IOMMU).
nogroup="" native=""
for d in /sys/bus/pci/devices/*; do
	b=$(basename "$d")
	drv=""
	[ -L "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
	if [ ! -e "$d/iommu_group" ] && [ -z "$nogroup" ]; then
		nogroup=$b
	elif [ -e "$d/iommu_group" ] && [ -n "$drv" ] && [ "${drv#vfio}" = "$drv" ] &&
		[ "$drv" != vfmig_stub ] && [ -z "$native" ] &&
		[ ! -e "/dev/vfio/$(basename "$(readlink "$d/iommu_group")")" ]; then
		native=$b:$drv
	fi
done
if [ -n "$nogroup" ]; then
	expect "no IOMMU group" "vfio:$nogroup" "has no IOMMU group: enable the IOMMU \(intel_iommu=on"
else
	echo "not here: a function without an IOMMU group (every function has one)"
fi
# A function in an IOMMU group, still on its native driver.
if [ -n "$native" ]; then
	b=${native%:*} drv=${native##*:}
	expect "native driver" "vfio:$b" "is bound to $drv, not to a VFIO migration driver; rebind it: driverctl set-override $b vfmig_stub"
else
	echo "not here: a function in an IOMMU group on a native driver (no IOMMU groups)"
fi
echo "not here: a group held by another process (EBUSY), a non-viable group, vfio-pci without migration: they need VFIO devices"
[ "$ran" -gt 0 ] || fail "no case could run"
echo "ok: $ran device-open messages checked"
