#!/usr/bin/env bash
# The installed libvirt hook (/etc/libvirt/hooks/qemu.d/vfmig) run exactly
# as libvirtd runs it: argv `DOMAIN migrate begin -`, the domain XML on
# stdin, a bare environment (LC_ALL=C, PATH) and / as working directory;
# libvirt aborts the migration when it exits non-zero and puts its stderr
# in the error. The source descriptors come from `vfmig describe
# --libvirt-metadata` (a sim device, a descriptor directory); the
# destination functions are a fake sysfs whose migration/ folders `vfmig
# describe --out` wrote.
#
#   test_libvirt_hook.sh BUILD_DIR
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
build=$1
need xmllint libxml2-utils

work=$(mktemp -d /tmp/vfmig-hook.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
stage "$build" vfmig "$root"
hook=$root/etc/libvirt/hooks/qemu.d/vfmig
[ -x "$hook" ] || fail "the hook is not installed as /etc/libvirt/hooks/qemu.d/vfmig"
vfmig=$(find "$root" -path '*/bin/vfmig' -type f)
[ -x "$vfmig" ] || fail "vfmig not installed"
grep -q "^vfmig=\${VFMIG:-${vfmig#"$root"}}" "$hook" || fail "the hook does not name the installed vfmig"

sys=$work/sys
bdf0=0000:00:04.0 bdf1=0000:00:05.0
mkdir -p "$sys/bus/pci/drivers/vfmig_stub" "$sys/bus/pci/drivers/vfio-pci"
dst_fn() { # BDF DRIVER [SIM-OPTIONS]: a destination function; with options, a vfmig identity
	mkdir -p "$sys/bus/pci/devices/$1"
	rm -rf "$sys/bus/pci/devices/$1/migration" "$sys/bus/pci/devices/$1/driver"
	ln -s "../../drivers/$2" "$sys/bus/pci/devices/$1/driver"
	if [ $# -gt 2 ]; then
		"$vfmig" describe "sim:$3" --out "$sys/bus/pci/devices/$1/migration" >/dev/null
	fi
}
domain() { # METADATA-FILE|- BDF...: a domain XML as libvirt passes it
	local meta=$1 b
	shift
	cat <<X
<domain type='kvm' id='7'>
  <name>guest1</name>
  <uuid>0f8fad5b-d9cb-469f-a165-70867728950e</uuid>
X
	if [ "$meta" != - ]; then
		# As libvirt 9.0 stores `virsh metadata --uri urn:vfmig:libvirt:1
		# --key vfmig --set "$(cat META)"` (deploy.libvirt_real shows it):
		# every element in the namespace, prefix vfmig.
		echo "  <metadata>"
		sed 's|^<devices>|<vfmig:devices xmlns:vfmig="urn:vfmig:libvirt:1">|; s|^</devices>|</vfmig:devices>|
			s|<device |<vfmig:device |; s|</device>|</vfmig:device>|
			s|<param |<vfmig:param |; s|<allowed |<vfmig:allowed |; s/^/    /' "$meta"
		echo "  </metadata>"
	fi
	cat <<X
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64' machine='pc-q35-10.0'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><source file='/var/lib/libvirt/images/g1.qcow2'/><target dev='vda' bus='virtio'/></disk>
X
	local slot=7
	for b in "$@"; do
		IFS=':.' read -r d bus s f <<<"$b"
		cat <<X
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <driver name='vfio'/>
      <source><address domain='0x$d' bus='0x$bus' slot='0x$s' function='0x$f'/></source>
      <alias name='hostdev$((slot - 7))'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x0$slot' function='0x0'/>
    </hostdev>
X
		slot=$((slot + 1))
	done
	echo "  </devices>"
	echo "</domain>"
}
run_hook() { # NAME OP SUB XML-FILE: as libvirtd does; exit code in $rc
	set +e
	(cd / && env -i LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		VFMIG="$vfmig" VFMIG_SYSFS="$sys" VFMIG_HOOK_CONF="$work/hook.conf" \
		"$hook" guest1 "$2" "$3" - <"$4" >"$work/$1.out" 2>"$work/$1.err")
	rc=$?
	set -e
	sed "s/^/  [$1] /" "$work/$1.err"
	[ ! -s "$work/$1.out" ] || fail "$1: the hook printed on stdout (libvirt would take it as a new XML)"
}

# The source: two devices, 2.0.3 with 8 MiB of memory.
"$vfmig" describe sim:size=64M --out "$work/src64" >/dev/null
"$vfmig" describe --libvirt-metadata sim:size=8M "$work/src64" >"$work/meta.xml" ||
	fail "vfmig describe --libvirt-metadata"
xmllint --noout "$work/meta.xml" || fail "the metadata is not well-formed XML"
grep -q '^<devices>$' "$work/meta.xml" ||
	fail "the metadata element is not a namespace-free <devices> (virsh metadata --set adds the namespace)"
[ "$(grep -c '<device ' "$work/meta.xml")" -eq 2 ] || fail "expected two <device>"

# 1. Compatible destinations: the hook passes.
dst_fn $bdf0 vfmig_stub size=8M
dst_fn $bdf1 vfmig_stub size=64M
domain "$work/meta.xml" $bdf0 $bdf1 >"$work/dom.xml"
run_hook accept migrate begin "$work/dom.xml"
[ "$rc" -eq 0 ] || fail "compatible destination refused (exit $rc)"
echo "ok: compatible: migrate begin passes"

# 2. The destination's version_compatible excludes the source's 2.0.3.
dst_fn $bdf1 vfmig_stub size=64M,compatible=2.1.0-
run_hook refuse migrate begin "$work/dom.xml"
[ "$rc" -eq 1 ] || fail "incompatible destination: exit $rc, expected 1"
grep -q "^vfmig: hostdev $bdf1 (source $work/src64): version_incompatible: source version 2.0.3 is outside the destination's compatible versions 2.1.0-" \
	"$work/refuse.err" || fail "no version_incompatible sentence for $bdf1"
grep -q "hostdev $bdf0" "$work/refuse.err" && fail "the compatible $bdf0 was reported"
grep -q '^vfmig: refusing the migration of domain guest1 (1 problem(s) above)' "$work/refuse.err" ||
	fail "no refusal summary"
echo "ok: incompatible version: refused with the verdict's sentence"

# 3. Several rules fail at once: every one is named.
dst_fn $bdf0 vfmig_stub size=16M,compatible=3.0-3.9,model=other
run_hook several migrate begin "$work/dom.xml"
[ "$rc" -eq 1 ] || fail "several failures: exit $rc"
for code in model_mismatch version_incompatible param_value_not_allowed; do
	grep -q "hostdev $bdf0 .*: $code: " "$work/several.err" || fail "no $code sentence"
done
echo "ok: several failed rules: each one on stderr"

# 4. A destination function still on vfio-pci (no migration identity).
dst_fn $bdf0 vfio-pci
dst_fn $bdf1 vfmig_stub size=64M
run_hook unbound migrate begin "$work/dom.xml"
[ "$rc" -eq 1 ] || fail "unbound destination: exit $rc"
grep -q "the destination function is bound to vfio-pci, not to a VFIO migration driver.*driverctl set-override $bdf0 vfmig_stub" \
	"$work/unbound.err" || fail "no rebind sentence"
echo "ok: destination on vfio-pci: refused, the fix named"

# 5. Only migrate/begin is checked; other calls pass silently.
for op in "prepare begin" "start begin" "started begin" "stopped end" "release end" "migrate end"; do
	run_hook other $op "$work/dom.xml"
	[ "$rc" -eq 0 ] && [ ! -s "$work/other.err" ] || fail "'$op' did not pass silently"
done
echo "ok: other hook calls pass silently"

# 6. Metadata and hostdevs disagree in number.
dst_fn $bdf0 vfmig_stub size=8M
domain "$work/meta.xml" $bdf0 >"$work/dom1.xml"
run_hook count migrate begin "$work/dom1.xml"
[ "$rc" -eq 1 ] && grep -q 'has 1 PCI hostdevs but its vfmig metadata describes 2' "$work/count.err" ||
	fail "count mismatch not refused"
echo "ok: metadata/hostdev count mismatch refused"

# 7. No metadata: a domain without vfmig devices passes; one with a vfmig
#    device is refused unless the configuration allows it.
dst_fn $bdf0 vfio-pci
domain - $bdf0 >"$work/plain.xml"
run_hook plain migrate begin "$work/plain.xml"
[ "$rc" -eq 0 ] || fail "a domain without vfmig devices was refused"
dst_fn $bdf0 vfmig_stub size=8M
run_hook nometa migrate begin "$work/plain.xml"
[ "$rc" -eq 1 ] && grep -q 'carries no source descriptors; on the source run: virsh metadata' "$work/nometa.err" ||
	fail "a vfmig device without metadata was not refused"
echo 'require_metadata = no' >"$work/hook.conf"
run_hook nometa-ok migrate begin "$work/plain.xml"
[ "$rc" -eq 0 ] || fail "require_metadata=no did not let it pass"
rm "$work/hook.conf"
echo "ok: no metadata: plain domain passes, vfmig device refused (configurable)"

# 8. What virsh metadata --set stores: libvirt re-serialises the element
#    (same namespace, its own prefix); and garbage on stdin is refused.
dst_fn $bdf1 vfmig_stub size=64M
domain "$work/meta.xml" $bdf0 $bdf1 | sed 's|<vfmig:|<v:|; s|</vfmig:|</v:|; s|xmlns:vfmig=|xmlns:v=|' >"$work/dom2.xml"
run_hook prefix migrate begin "$work/dom2.xml"
[ "$rc" -eq 0 ] || fail "another namespace prefix was not understood"
echo '<domain><devices>' >"$work/bad.xml"
run_hook bad migrate begin "$work/bad.xml"
[ "$rc" -eq 1 ] && grep -q 'does not parse' "$work/bad.err" || fail "malformed XML not refused"
echo "ok: any namespace prefix; malformed XML refused"
