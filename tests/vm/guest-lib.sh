# shellcheck shell=bash
# Guest environment for vfmig's guest tests: sourced by the test driver, by
# run.sh --script scripts and by suites that need to redo a step.
#
#   vfm_prepare         every step below, once; never fails, records what
#                       is missing in VFM_*_REASON and exports the results
#   vfm_load_vfio       vfio, vfio_iommu_type1, vfio_pci_core
#   vfm_load_stub       insmod "$VFM_KO" (the module built on the host)
#   vfm_find_edu        VFM_EDU_A/B (BDFs) of the first two edu devices,
#                       VFM_EDU_C/D of the next two (left unbound)
#   vfm_bind BDF DRV    unbind BDF from its driver, bind it to DRV
#   vfm_bind_edu        both edu devices to the stub's PCI driver
#   vfm_setup_net       lo and eth0 (10.0.2.15/24, QEMU user-net defaults)
#   vfm_setup_rxe       rdma_rxe, ib_uverbs, rdma_ucm; rxe0 on eth0, ACTIVE
#
# Exported for suites (empty when unavailable; the *_REASON says why):
#   VFM_ROOT VFM_BUILD VFM_OUT   source tree, build tree, results export
#   VFM_KO VFM_STUB_MOD VFM_STUB_DRV   the module file, module and driver name
#   VFM_HAVE_VFIO VFM_VFIO_REASON
#   VFM_HAVE_STUB VFM_STUB_REASON      1 when the stub is loaded and both
#                                      edu devices are bound to it
#   VFM_EDU_A VFM_EDU_B VFM_EDU_A_GROUP VFM_EDU_B_GROUP
#   VFM_EDU_C VFM_EDU_D VFM_EDU_C_GROUP VFM_EDU_D_GROUP  functions 3 and 4,
#                                      bound by the suites that use them
#   VFM_HAVE_NET VFM_GUEST_IP (10.0.2.15) VFM_NETDEV (eth0)
#   VFM_HAVE_RXE VFM_RXE_REASON VFM_RXE (rxe0)
# The same assignments are written to /run/vfm-env for later shells.

vfm_log() { printf 'vfm-prep: %s\n' "$*" >&2; }

vfm_load_vfio() {
	VFM_HAVE_VFIO=0
	if [ -z "$(ls /sys/kernel/iommu_groups 2>/dev/null)" ]; then
		VFM_VFIO_REASON="no IOMMU groups (is intel_iommu=on on the command line?)"
		return 1
	fi
	if ! modprobe -a vfio vfio_iommu_type1 vfio_pci_core 2>/tmp/vfm-modprobe.err; then
		VFM_VFIO_REASON="modprobe vfio failed: $(tr '\n' ' ' </tmp/vfm-modprobe.err)"
		return 1
	fi
	if [ ! -c /dev/vfio/vfio ]; then
		VFM_VFIO_REASON="/dev/vfio/vfio is missing after loading vfio"
		return 1
	fi
	VFM_HAVE_VFIO=1
	VFM_VFIO_REASON=
}

vfm_load_stub() {
	VFM_HAVE_STUB=0
	if [ -z "${VFM_KO:-}" ] || [ ! -r "$VFM_KO" ]; then
		VFM_STUB_REASON="vfmig_stub.ko not built${VFM_KO_REASON:+ ($VFM_KO_REASON)}"
		return 1
	fi
	[ "${VFM_HAVE_VFIO:-0}" = 1 ] || {
		VFM_STUB_REASON="vfio unavailable: $VFM_VFIO_REASON"
		return 1
	}
	VFM_STUB_MOD=$(modinfo -F name "$VFM_KO" 2>/dev/null)
	VFM_STUB_MOD=${VFM_STUB_MOD:-vfmig_stub}
	if [ ! -d "/sys/module/$VFM_STUB_MOD" ]; then
		# insmod does not load what the module depends on
		local deps
		deps=$(modinfo -F depends "$VFM_KO" 2>/dev/null | tr ',' ' ')
		# shellcheck disable=SC2086 # word lists
		[ -z "$deps" ] || modprobe -a $deps 2>/dev/null
		# shellcheck disable=SC2086
		if ! insmod "$VFM_KO" ${VFM_KO_PARAMS:-} 2>/tmp/vfm-insmod.err; then
			VFM_STUB_REASON="insmod $VFM_KO failed: $(tr '\n' ' ' </tmp/vfm-insmod.err)$(dmesg | grep -i 'unknown symbol' | tail -n 3 | tr '\n' ' ')"
			return 1
		fi
	fi
	local d
	VFM_STUB_DRV=
	for d in /sys/module/"$VFM_STUB_MOD"/drivers/pci:*; do
		[ -e "$d" ] && VFM_STUB_DRV=${d##*/pci:}
	done
	if [ -z "$VFM_STUB_DRV" ]; then
		VFM_STUB_REASON="$VFM_STUB_MOD registers no PCI driver"
		return 1
	fi
	VFM_STUB_REASON=
	return 0
}

vfm_find_edu() {
	local d
	# in BDF order: A and B are the first two functions, as with two
	VFM_EDU_A='' VFM_EDU_B='' VFM_EDU_C='' VFM_EDU_D=''
	for d in /sys/bus/pci/devices/*; do
		if [ "$(cat "$d/vendor")" != 0x1234 ] || [ "$(cat "$d/device")" != 0x11e8 ]; then
			continue
		fi
		if [ -z "$VFM_EDU_A" ]; then
			VFM_EDU_A=${d##*/}
		elif [ -z "$VFM_EDU_B" ]; then
			VFM_EDU_B=${d##*/}
		elif [ -z "$VFM_EDU_C" ]; then
			VFM_EDU_C=${d##*/}
		elif [ -z "$VFM_EDU_D" ]; then
			VFM_EDU_D=${d##*/}
		fi
	done
	VFM_EDU_A_GROUP=$(vfm_group_of "$VFM_EDU_A")
	VFM_EDU_B_GROUP=$(vfm_group_of "$VFM_EDU_B")
	# shellcheck disable=SC2034 # exported by vfm_prepare
	VFM_EDU_C_GROUP=$(vfm_group_of "$VFM_EDU_C")
	# shellcheck disable=SC2034
	VFM_EDU_D_GROUP=$(vfm_group_of "$VFM_EDU_D")
	[ -n "$VFM_EDU_A" ] && [ -n "$VFM_EDU_B" ]
}

# vfm_group_of BDF: the device's IOMMU group number (empty if none).
vfm_group_of() {
	[ -n "$1" ] || return 0
	local g
	g=$(readlink "/sys/bus/pci/devices/$1/iommu_group" 2>/dev/null) || return 0
	echo "${g##*/}"
}

# vfm_driver_of BDF: the name of the driver bound to BDF (empty if none).
vfm_driver_of() {
	local l
	l=$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null) || return 0
	echo "${l##*/}"
}

vfm_unbind() {
	local dev=/sys/bus/pci/devices/$1
	[ -e "$dev/driver" ] && echo "$1" >"$dev/driver/unbind"
	return 0
}

# vfm_release BDF: unbind BDF and clear its driver_override (as at boot).
vfm_release() {
	vfm_unbind "$1"
	echo >"/sys/bus/pci/devices/$1/driver_override" 2>/dev/null
	return 0
}

# vfm_bind BDF DRIVER: (re)bind BDF to DRIVER through driver_override.
vfm_bind() {
	local bdf=$1 drv=$2 dev=/sys/bus/pci/devices/$1
	[ "$(vfm_driver_of "$bdf")" = "$drv" ] && return 0
	vfm_unbind "$bdf" || return 1
	echo "$drv" >"$dev/driver_override" || return 1
	echo "$bdf" >/sys/bus/pci/drivers_probe 2>/dev/null
	[ "$(vfm_driver_of "$bdf")" = "$drv" ]
}

vfm_bind_edu() {
	local b
	for b in "$VFM_EDU_A" "$VFM_EDU_B"; do
		if ! vfm_bind "$b" "$VFM_STUB_DRV"; then
			VFM_STUB_REASON="cannot bind $b to $VFM_STUB_DRV (bound to '$(vfm_driver_of "$b")')"
			return 1
		fi
	done
	[ -c "/dev/vfio/$VFM_EDU_A_GROUP" ] && [ -c "/dev/vfio/$VFM_EDU_B_GROUP" ] || {
		VFM_STUB_REASON="/dev/vfio/<group> nodes missing after binding"
		return 1
	}
	VFM_HAVE_STUB=1
}

vfm_setup_net() {
	VFM_HAVE_NET=0 VFM_NETDEV=eth0 VFM_GUEST_IP=10.0.2.15
	modprobe virtio_net 2>/dev/null
	ip link set lo up
	local i
	for i in $(seq 50); do
		[ -e /sys/class/net/$VFM_NETDEV ] && break
		sleep 0.1
	done
	[ -e /sys/class/net/$VFM_NETDEV ] || return 1
	ip link set "$VFM_NETDEV" up || return 1
	ip addr replace "$VFM_GUEST_IP/24" dev "$VFM_NETDEV" || return 1
	ip route replace default via 10.0.2.2 dev "$VFM_NETDEV" 2>/dev/null
	VFM_HAVE_NET=1
}

vfm_setup_rxe() {
	VFM_HAVE_RXE=0 VFM_RXE=rxe0
	[ "${VFM_HAVE_NET:-0}" = 1 ] || {
		VFM_RXE_REASON="no network interface $VFM_NETDEV"
		return 1
	}
	if ! modprobe -a rdma_rxe ib_uverbs rdma_ucm 2>/tmp/vfm-modprobe.err; then
		VFM_RXE_REASON="modprobe rdma_rxe failed: $(tr '\n' ' ' </tmp/vfm-modprobe.err)"
		return 1
	fi
	if [ ! -e /sys/class/infiniband/$VFM_RXE ] &&
		! rdma link add "$VFM_RXE" type rxe netdev "$VFM_NETDEV" 2>/tmp/vfm-rdma.err; then
		VFM_RXE_REASON="rdma link add failed: $(tr '\n' ' ' </tmp/vfm-rdma.err)"
		return 1
	fi
	local st=
	for _ in $(seq 100); do
		st=$(cat /sys/class/infiniband/$VFM_RXE/ports/1/state 2>/dev/null)
		case "$st" in *ACTIVE*) break ;; esac
		sleep 0.1
	done
	case "$st" in
	*ACTIVE*) ;;
	*)
		VFM_RXE_REASON="$VFM_RXE port state '$st', not ACTIVE"
		return 1
		;;
	esac
	VFM_HAVE_RXE=1
	VFM_RXE_REASON=
}

vfm_env_vars="VFM_ROOT VFM_BUILD VFM_OUT VFM_KO VFM_STUB_MOD VFM_STUB_DRV
VFM_HAVE_VFIO VFM_VFIO_REASON VFM_HAVE_STUB VFM_STUB_REASON VFM_EDU_A VFM_EDU_B
VFM_EDU_A_GROUP VFM_EDU_B_GROUP VFM_EDU_C VFM_EDU_D VFM_EDU_C_GROUP VFM_EDU_D_GROUP
VFM_HAVE_NET VFM_NETDEV VFM_GUEST_IP VFM_HAVE_RXE
VFM_RXE_REASON VFM_RXE"

vfm_prepare() {
	vfm_load_vfio || vfm_log "vfio: $VFM_VFIO_REASON"
	if ! vfm_find_edu; then
		VFM_STUB_REASON="two edu devices (1234:11e8) not found"
		vfm_log "$VFM_STUB_REASON"
	elif vfm_load_stub; then
		vfm_bind_edu || vfm_log "stub: $VFM_STUB_REASON"
	else
		vfm_log "stub: $VFM_STUB_REASON"
	fi
	vfm_setup_net || vfm_log "network: $VFM_NETDEV did not come up"
	vfm_setup_rxe || vfm_log "rxe: $VFM_RXE_REASON"
	local v
	: >/run/vfm-env
	for v in $vfm_env_vars; do
		export "${v?}"
		printf 'export %s=%q\n' "$v" "${!v:-}" >>/run/vfm-env
	done
	return 0
}

vfm_env_summary() {
	printf 'vfio=%s stub=%s edu=%s(group %s),%s(group %s) also %s,%s rxe=%s' \
		"${VFM_HAVE_VFIO:-0}" "${VFM_HAVE_STUB:-0}${VFM_STUB_DRV:+:$VFM_STUB_DRV}" \
		"${VFM_EDU_A:-none}" "${VFM_EDU_A_GROUP:-?}" "${VFM_EDU_B:-none}" \
		"${VFM_EDU_B_GROUP:-?}" "${VFM_EDU_C:-none}" "${VFM_EDU_D:-none}" \
		"${VFM_HAVE_RXE:-0}"
}

# Result lines for suites (see README.md).
vfm_ok() { echo "ok $1"; }
vfm_not_ok() { echo "not ok $1 - $2"; }
vfm_skip() { echo "skip $1 - $2"; }
# vfm_check NAME CMD...: ok when CMD succeeds, else not ok with its status.
vfm_check() {
	local name=$1
	shift
	if "$@"; then
		vfm_ok "$name"
	else
		vfm_not_ok "$name" "'$*' exited with status $?"
	fi
}
# vfm_measure NAME VALUE UNIT: a measurement (not an assertion).
vfm_measure() { echo "# measure $1 $2 $3"; }
