#!/usr/bin/env bash
# The hook under a real libvirtd: two libvirtd instances on this host, each
# in its own mount namespace (private /etc/libvirt with its own host_uuid,
# /var, /run), the installed hook in both, a small TCG domain, and
# `virsh migrate --live` from one to the other:
#  - the domain carries source descriptors written by `vfmig describe
#    --libvirt-metadata` and stored by `virsh metadata --set`; it has no
#    PCI hostdev (this host has no IOMMU, so no VFIO device to give it),
#    so the destination's hook must refuse (metadata for one device, no
#    hostdev): virsh fails with the hook's sentences, the source domain is
#    still running (same QEMU process), nothing runs at the destination;
#  - the same domain without vfmig metadata migrates (the hook passes).
# What this does not cover, and why: a hostdev bound to vfmig_stub and a
# verdict from compared descriptors need VFIO (an IOMMU, the module) and
# QEMU >= 8.1 with a nested guest; deploy.libvirt_hook covers the verdict
# paths with the same hook and the XML libvirt stores, as libvirtd runs it.
#
#   test_libvirt_real.sh BUILD_DIR
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
build=$1

[ "$(id -u)" -eq 0 ] || skip "needs root (libvirtd system instances, mount namespaces)"
if [ "${VFM_SKIP_VM:-0}" = 1 ] && ! command -v qemu-system-x86_64 >/dev/null; then
	skip "VFM_SKIP_VM=1 and no QEMU (scripts/setup.sh --vm installs QEMU and libvirt)"
fi
need libvirtd libvirt-daemon
need virsh libvirt-clients
need qemu-system-x86_64 qemu-system-x86
need xmllint libxml2-utils
need unshare util-linux
[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] ||
	{ [ "${CI:-}" = true ] && fail "libvirt's QEMU driver is missing (libvirt-daemon-driver-qemu)"; skip "libvirt's QEMU driver is missing (libvirt-daemon-driver-qemu; scripts/setup.sh --vm)"; }

work=$(mktemp -d /tmp/vfmig-lv.XXXXXX)
root=$work/root
stage "$build" vfmig "$root"
hook=$root/etc/libvirt/hooks/qemu.d/vfmig
vfmig=$(find "$root" -path '*/bin/vfmig' -type f)
bindir=$(dirname "${vfmig#"$root"}")
dom=vfmig-test-$$
pids=()

cleanup() {
	for n in src dst; do
		local c="qemu:///system?socket=$work/$n/run/libvirt/libvirt-sock"
		virsh -c "$c" destroy "$dom" >/dev/null 2>&1 || true
		local qp
		qp=$(cat "$work/$n/run/libvirt/qemu/$dom.pid" 2>/dev/null || true)
		[ -z "$qp" ] || kill "$qp" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

start_daemon() { # NAME HOST-UUID
	local n=$1 w=$work/$1
	mkdir -p "$w/etc/hooks/qemu.d" "$w/var/lib/libvirt" "$w/var/cache/libvirt" \
		"$w/var/log/libvirt" "$w/run" "$w/bin"
	ln -s /run "$w/var/run"
	cp /etc/libvirt/libvirt.conf "$w/etc/" 2>/dev/null || true
	cp "$hook" "$w/etc/hooks/qemu.d/vfmig"
	cp "$vfmig" "$w/bin/vfmig"
	cat >"$w/etc/libvirtd.conf" <<X
host_uuid = "$2"
auth_unix_rw = "none"
unix_sock_rw_perms = "0700"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
X
	# No virtlogd, cgroups, security driver or private /dev here.
	cat >"$w/etc/qemu.conf" <<X
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
X
	# libvirt resolves its built-in QEMU user (libvirt-qemu) before it
	# reads qemu.conf: this namespace's passwd/group have it.
	cp /etc/passwd "$w/passwd"
	cp /etc/group "$w/group"
	grep -q '^libvirt-qemu:' "$w/passwd" ||
		echo 'libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin' >>"$w/passwd"
	grep -q '^libvirt-qemu:' "$w/group" || echo 'libvirt-qemu:x:64055:' >>"$w/group"
	grep -q '^kvm:' "$w/group" || echo 'kvm:x:64056:' >>"$w/group"
	# The hook runs "$bindir/vfmig" (the configured prefix): a private
	# mount over that folder holds this build's copy.
	unshare -m --propagation private bash -c "
		set -e
		mount --bind '$w/etc' /etc/libvirt
		mount --bind '$w/var' /var
		mount --bind '$w/run' /run
		mount --bind '$w/bin' '$bindir'
		mount --bind '$w/passwd' /etc/passwd
		mount --bind '$w/group' /etc/group
		exec libvirtd --config /etc/libvirt/libvirtd.conf" >"$w/daemon.out" 2>&1 &
	pids+=($!)
	local c="qemu:///system?socket=$w/run/libvirt/libvirt-sock"
	for _ in $(seq 1 60); do
		if virsh -c "$c" version >/dev/null 2>&1; then
			echo "libvirtd '$n' up (host_uuid $2)"
			return 0
		fi
		sleep 0.5
	done
	cat "$w/daemon.out"
	tail -n 20 "$w/var/log/libvirt/libvirtd.log" 2>/dev/null || true
	fail "libvirtd '$n' did not come up"
}
[ -d /etc/libvirt ] || fail "/etc/libvirt is missing (libvirt-daemon)"
[ -d "$bindir" ] || fail "$bindir does not exist: cannot put vfmig there in the namespace"

start_daemon src 6a0b3c1e-0001-4c59-9b7a-0d1e2f3a4b5c
start_daemon dst 6a0b3c1e-0002-4c59-9b7a-0d1e2f3a4b5c
S="qemu:///system?socket=$work/src/run/libvirt/libvirt-sock"
D="qemu+unix:///system?socket=$work/dst/run/libvirt/libvirt-sock"
D_ro="qemu:///system?socket=$work/dst/run/libvirt/libvirt-sock"
cat >"$work/dom.xml" <<X
<domain type='qemu'>
  <name>$dom</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <memballoon model='none'/>
  </devices>
</domain>
X
port=$((20000 + RANDOM % 20000))
state() { virsh -c "$1" domstate "$dom" 2>/dev/null | head -n1 || true; }
qpid() { cat "$work/$1/run/libvirt/qemu/$dom.pid" 2>/dev/null || true; }

# 1. Source descriptors in the metadata, no hostdev: refused by the hook.
virsh -c "$S" create "$work/dom.xml" >/dev/null || fail "cannot start the test domain"
virsh -c "$S" metadata "$dom" --uri urn:vfmig:libvirt:1 --key vfmig --live \
	--set "$("$vfmig" describe --libvirt-metadata sim:size=8M)" >/dev/null ||
	fail "virsh metadata --set refused vfmig describe --libvirt-metadata's element"
virsh -c "$S" dumpxml "$dom" | sed -n '/<metadata>/,/<\/metadata>/p' >"$work/stored.xml"
grep -q 'xmlns:vfmig="urn:vfmig:libvirt:1"' "$work/stored.xml" || { cat "$work/stored.xml"; fail "metadata not stored"; }
echo "metadata as libvirt stores it:"
sed 's/^/  /' "$work/stored.xml"
before=$(qpid src)
set +e
virsh -c "$S" migrate --live "$dom" "$D" --migrateuri "tcp://127.0.0.1:$port" >"$work/m1.out" 2>&1
rc=$?
set -e
cat "$work/m1.out"
[ "$rc" -ne 0 ] || fail "the migration was not refused"
grep -q 'Hook script execution failed' "$work/m1.out" || fail "libvirt did not report a hook failure"
grep -q "vfmig: domain $dom has 0 PCI hostdevs but its vfmig metadata describes 1 source devices" "$work/m1.out" ||
	fail "the hook's sentence is not in libvirt's error"
grep -q "vfmig: refusing the migration of domain $dom" "$work/m1.out" || fail "no refusal summary in libvirt's error"
[ "$(state "$S")" = running ] || fail "the source domain is '$(state "$S")' after the refusal"
[ "$(qpid src)" = "$before" ] && kill -0 "$before" || fail "the source QEMU process changed"
[ -z "$(state "$D_ro")" ] || fail "the destination has the domain after a refusal"
echo "ok: real libvirtd: migrate begin refused by the hook, its sentences in virsh's error, the source still running (QEMU pid $before)"

# 2. Without vfmig metadata the hook passes and libvirt migrates.
virsh -c "$S" metadata "$dom" --uri urn:vfmig:libvirt:1 --live --remove >/dev/null ||
	fail "virsh metadata --remove"
virsh -c "$S" migrate --live "$dom" "$D" --migrateuri "tcp://127.0.0.1:$((port + 1))" >"$work/m2.out" 2>&1 ||
	{ cat "$work/m2.out"; tail -n 20 "$work/dst/var/log/libvirt/libvirtd.log"; fail "the migration without metadata failed"; }
[ "$(state "$D_ro")" = running ] || fail "the domain does not run at the destination"
[ -z "$(state "$S")" ] || fail "the domain is still at the source"
echo "ok: real libvirtd: a domain without vfmig metadata migrates (hook passes)"
