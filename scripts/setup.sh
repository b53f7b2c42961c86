#!/usr/bin/env bash
# Install the Debian packages vfmig needs to build and test. Idempotent: a
# package already present is not touched, and apt is not called at all when
# everything is there.
#
#   scripts/setup.sh          build + host tests
#   scripts/setup.sh --vm     also the guest-kernel test kit (QEMU, a 6.12
#                             kernel image with matching headers, soft-RoCE)
set -euo pipefail

want_vm=0
for a in "$@"; do
	case "$a" in
	--vm) want_vm=1 ;;
	-h | --help)
		sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "setup.sh: unknown option '$a' (try --help)" >&2
		exit 2
		;;
	esac
done

log() { printf 'setup: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
	log "must run as root (it installs Debian packages)"
	exit 2
fi

export DEBIAN_FRONTEND=noninteractive

pkgs=(build-essential cmake pkg-config git clang libclang-rt-14-dev
      clang-format liburing-dev libcmocka-dev librdmacm-dev libibverbs-dev
      uuid-dev libssl-dev iperf3 gnuplot-nox python3 procps psmisc
      dkms libxml2-utils lintian iproute2 nftables libjson-c-dev
      libsystemd-dev)
if [ "$want_vm" -eq 1 ]; then
	pkgs+=(qemu-system-x86 busybox-static cpio kmod rdma-core
	       ibverbs-providers ibverbs-utils perftest iproute2
	       sparse linux-source-6.12
	       libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients)
fi

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing+=("$p")
	fi
done

updated=0
apt_update() {
	if [ "$updated" -eq 0 ]; then
		log "apt-get update"
		apt-get update -qq
		updated=1
	fi
}

if [ "${#missing[@]}" -gt 0 ]; then
	apt_update
	log "installing: ${missing[*]}"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The guest kernel: the newest 6.12.N for which both the unsigned image and
# the matching headers exist. Security updates move N, so never pin it.
if [ "$want_vm" -eq 1 ]; then
	# shellcheck disable=SC2012 # Debian's version strings, sorted by sort -V
	have=$(ls -d /lib/modules/6.12.*+deb12-amd64/build 2>/dev/null | sort -V | tail -n1 || true)
	if [ -n "$have" ] && [ -e "/boot/vmlinuz-$(basename "$(dirname "$have")")" ]; then
		log "guest kernel present: $(basename "$(dirname "$have")")"
	else
		apt_update
		imgs=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' |
			sed -E 's/^linux-image-(6\.12\.[0-9]+\+deb12-amd64)-unsigned.*/\1/' | sort -V)
		hdrs=$(apt-cache search --names-only '^linux-headers-6\.12\.[0-9]+\+deb12-amd64$' |
			sed -E 's/^linux-headers-(6\.12\.[0-9]+\+deb12-amd64) .*/\1/' | sort -V)
		ver=$(comm -12 <(echo "$imgs" | sort) <(echo "$hdrs" | sort) | sort -V | tail -n1)
		if [ -z "$ver" ]; then
			log "no linux 6.12 image with matching headers in the package lists"
			exit 1
		fi
		log "installing guest kernel $ver"
		apt-get install -y -qq --no-install-recommends \
			"linux-image-$ver-unsigned" "linux-headers-$ver" >/dev/null
	fi
fi
# From bookworm-backports, unpacked into private prefixes with a private apt
# state (bpo_init, once); the system's packages and sources are never touched.
bpo_st=
bpo_aptq=()
bpo_init() {
	[ -z "$bpo_st" ] || return 0
	bpo_st=$(mktemp -d)
	trap 'rm -rf "$bpo_st"' EXIT
	mkdir -p "$bpo_st/lists/partial" "$bpo_st/cache/archives/partial"
	echo "deb http://deb.debian.org/debian bookworm-backports main" >"$bpo_st/sources.list"
	bpo_aptq=(-o Dir::Etc::sourcelist="$bpo_st/sources.list" -o Dir::Etc::sourceparts=- -o APT::Sandbox::User=root
		-o Dir::State::Lists="$bpo_st/lists" -o Dir::Cache="$bpo_st/cache"
		-o APT::Default-Release=bookworm-backports)
	apt-get "${bpo_aptq[@]}" update -qq
}
# bpo_unpack PREFIX PKG...: download each PKG of bookworm-backports and
# dpkg -x it into PREFIX.new, which then replaces PREFIX whole.
bpo_unpack() {
	local dest=$1 d p pk=()
	shift
	bpo_init
	for p in "$@"; do pk+=("$p/bookworm-backports"); done
	rm -rf "$bpo_st/deb" && mkdir -p "$bpo_st/deb"
	(cd "$bpo_st/deb" && apt-get "${bpo_aptq[@]}" download -qq "${pk[@]}")
	rm -rf "$dest.new" && mkdir -p "$dest.new"
	for d in "$bpo_st"/deb/*.deb; do
		log "  $(basename "$d")"
		dpkg -x "$d" "$dest.new"
	done
	rm -rf "$dest" && mv "$dest.new" "$dest"
}

# QEMU 10 for the stock-VMM guest suites (tests/vm/guest.d/50-qemu.sh,
# 55-libvirt.sh): Debian 12's own QEMU is 7.2, too old for VFIO migration
# with PRE_COPY.
if [ "$want_vm" -eq 1 ]; then
	q10=${VFM_QEMU10_PREFIX:-/opt/vfmig/qemu10}
	if [ -x "$q10/usr/bin/qemu-system-x86_64" ]; then
		log "QEMU 10 present: $q10"
	else
		log "fetching QEMU 10 from bookworm-backports into $q10"
		bpo_unpack "$q10" qemu-system-x86 qemu-system-common qemu-system-data
		"$q10/usr/bin/qemu-system-x86_64" --version | head -n1 >&2 ||
			{ log "QEMU 10 in $q10 does not run (missing libraries?)"; exit 1; }
	fi
fi
# libvirt 11 for tests/vm/guest.d/55-libvirt.sh: Debian 12's libvirt 9.0
# refuses an unmanaged hostdev bound to a VFIO variant driver such as
# vfmig_stub. The suite runs libvirtd and virsh of the prefix with
# LD_LIBRARY_PATH=PREFIX/usr/lib/x86_64-linux-gnu, the QEMU driver only; the
# libraries libvirt links beyond its own come with Debian's libvirt above.
if [ "$want_vm" -eq 1 ]; then
	lv11=${VFM_LIBVIRT11_PREFIX:-/opt/vfmig/libvirt11}
	lv11lib=$lv11/usr/lib/x86_64-linux-gnu
	lv11_ok() {
		[ -x "$lv11/usr/sbin/libvirtd" ] && [ -x "$lv11/usr/bin/virsh" ] &&
			[ -e "$lv11lib/libvirt/connection-driver/libvirt_driver_qemu.so" ] &&
			LD_LIBRARY_PATH=$lv11lib "$lv11/usr/sbin/libvirtd" --version >&2 &&
			LD_LIBRARY_PATH=$lv11lib "$lv11/usr/bin/virsh" --version >/dev/null
	}
	if lv11_ok 2>/dev/null; then
		log "libvirt 11 present: $lv11"
	else
		log "fetching libvirt 11 from bookworm-backports into $lv11"
		bpo_unpack "$lv11" libvirt-daemon libvirt-daemon-driver-qemu libvirt0 \
			libvirt-clients libvirt-common libvirt-daemon-common libvirt-daemon-log
		lv11_ok ||
			{ log "libvirt 11 in $lv11 is incomplete or does not run (missing libraries?)"; exit 1; }
	fi
fi
log "all packages present"
