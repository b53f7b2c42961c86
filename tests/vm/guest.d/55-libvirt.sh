#!/bin/bash
# libvirt migrates a domain holding a vfmig_stub function, with vfmig's
# libvirt hook deciding: two libvirtd in this guest, each in its own mount
# namespace (own /etc/libvirt with its own host_uuid, /var, /run, sockets)
# with the hook the build produced (BUILD/deploy/libvirt-qemu-hook, what the
# package installs as /etc/libvirt/hooks/qemu.d/vfmig) in its hooks/qemu.d/.
# libvirt is 11.3 from bookworm-backports, unpacked by scripts/setup.sh
# --vm into $VFM_LIBVIRT11_PREFIX (default /opt/vfmig/libvirt11): Debian
# 12's 9.0 refuses an unmanaged hostdev bound to a VFIO variant driver
# (below).
# The domain runs on QEMU 10 (a wrapper over $VFM_QEMU10_PREFIX as
# <emulator>, TCG, 32 MiB, no disk) and holds edu A as <hostdev
# managed='no'> with enable-migration=on (a <qemu:override>); its
# <metadata> holds A's descriptor from `vfmig describe --libvirt-metadata`.
# Then `virsh migrate --live --xml` with the hostdev moved to edu B:
#   refused:    B's version_compatible excludes A's version: virsh fails
#               with the hook's sentences, the domain runs on at the source
#               (same QEMU), nothing at the destination, A RUNNING with its
#               digest unchanged
#   compatible: B back as it was: the migration completes, the domain runs
#               at the destination only, on B, B RUNNING with the digest A
#               held when libvirt ended the source QEMU (A's
#               migration/closed_digest, kept by the driver at that close)
# The unpacked QEMU 10 loads its modules from the system's module folder
# (Debian's QEMU 7.2 modules), and libvirt's capability probe loads them
# all: QEMU 10 aborts. Each daemon's namespace binds the prefix's module
# folder over it and hides the system QEMU binaries (which then could not
# start, and whose probes would cost minutes under TCG). About 2-3 minutes.
# vfm-timeout: 900
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

prefix=${VFM_QEMU10_PREFIX:-/opt/vfmig/qemu10}
Q=$prefix/usr/bin/qemu-system-x86_64
hook=$VFM_BUILD/deploy/libvirt-qemu-hook
vfmig=$VFM_BUILD/bin/vfmig
# skip_all WHY: what the guest lacks. With CI=true, a piece that
# scripts/setup.sh (--vm) installs, or the build makes, is a failure.
skip_all() {
	if [ "${CI:-}" = true ]; then
		vfm_not_ok libvirt/setup "$1 (CI=true: scripts/setup.sh --vm and the build provide it)"
		exit 1
	fi
	echo "skip libvirt - $1"
	exit 77
}
[ -x "$Q" ] || skip_all "QEMU 10 not found at $Q (run scripts/setup.sh --vm)"
[ -d "$prefix/usr/lib/x86_64-linux-gnu/qemu" ] || skip_all "QEMU 10's module folder is missing in $prefix"
for c in xmllint unshare; do
	command -v "$c" >/dev/null || skip_all "$c is missing (scripts/setup.sh installs it)"
done
# libvirt 9.0 (Debian 12) takes an unmanaged PCI hostdev only when its
# driver is named vfio-pci, pci-stub or pciback ("Unmanaged PCI device ...
# must be manually detached from the host"): a VFIO variant driver such as
# vfmig_stub needs a libvirt that recognises one (its vfio-dev folder in
# sysfs): libvirt 11.3 of bookworm-backports, unpacked into a prefix.
lv=${VFM_LIBVIRT11_PREFIX:-/opt/vfmig/libvirt11}
lvlib=$lv/usr/lib/x86_64-linux-gnu
libdir=/usr/lib/x86_64-linux-gnu
if [ ! -x "$lv/usr/sbin/libvirtd" ] || [ ! -x "$lv/usr/bin/virsh" ] ||
	[ ! -e "$lvlib/libvirt/connection-driver/libvirt_driver_qemu.so" ]; then
	skip_all "no libvirt 11 at $lv (run scripts/setup.sh --vm); Debian 12's libvirt 9.0 refuses a hostdev bound to vfmig_stub"
fi
[ -x "$hook" ] || skip_all "the libvirt hook was not built ($hook)"
[ -x "$vfmig" ] || skip_all "vfmig was not built ($vfmig)"
[ "$VFM_HAVE_STUB" = 1 ] || skip_all "${VFM_STUB_REASON:-vfmig_stub.ko not loaded}"
# The hook runs the vfmig of the configured prefix: each namespace binds a
# folder holding this build's vfmig over that prefix's bin folder.
# shellcheck disable=SC2016 # a literal ${VFMIG:-...}
hook_vfmig=$(sed -n 's/^vfmig=\${VFMIG:-\(.*\)}$/\1/p' "$hook")
bindir=$(dirname "$hook_vfmig")
if [ -z "$hook_vfmig" ] || [ ! -d "$bindir" ]; then
	skip_all "cannot tell where the hook looks for vfmig ('$hook_vfmig')"
fi

A=$VFM_EDU_A
B=$VFM_EDU_B
knob() { echo "/sys/bus/pci/devices/$1/vfmig/$2"; }
mig() { echo "/sys/bus/pci/devices/$1/migration/$2"; }
work=$(mktemp -d /tmp/vfmig-lv.XXXXXX)
dom='vfmig-lv'
mem_a=$(cat "$(mig "$A" params/memory)")
mem_b=$(cat "$(mig "$B" params/memory)")
allowed_b=$(cat "$(mig "$B" allowed/memory)")
rate_a=$(cat "$(knob "$A" dirty_rate)")
rate_b=$(cat "$(knob "$B" dirty_rate)")
compat_b=$(cat "$(mig "$B" version_compatible)")
pids=()
uri() { echo "qemu:///system?socket=$work/$1/run/libvirt/libvirt-sock"; }
S=$(uri src)
D=$(uri dst)
# the migration's target as virsh wants it: a "remote" URI
D_remote="qemu+unix:///system?socket=$work/dst/run/libvirt/libvirt-sock"
qpid() { cat "$work/$1/run/libvirt/qemu/$dom.pid" 2>/dev/null; }
state() { timeout 60 "$virsh" -c "$1" domstate "$dom" 2>/dev/null | head -n1; }

# shellcheck disable=SC2317 # run by the EXIT trap
restore() {
	local n p
	for n in src dst; do
		[ -S "$work/$n/run/libvirt/libvirt-sock" ] &&
			timeout 60 "$virsh" -c "$(uri "$n")" destroy "$dom" >/dev/null 2>&1
		p=$(qpid "$n")
		[ -z "$p" ] || kill "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do timeout 30 tail --pid="$p" -f /dev/null; done
	echo "$rate_a" >"$(knob "$A" dirty_rate)"
	echo "$rate_b" >"$(knob "$B" dirty_rate)"
	echo "$mem_a" >"$(mig "$A" params/memory)"
	echo "$mem_b" >"$(mig "$B" params/memory)"
	echo "$compat_b" >"$(mig "$B" version_compatible)"
	echo "$allowed_b" >"$(mig "$B" allowed/memory)"
	mkdir -p "$VFM_OUT/libvirt"
	cp "$work"/*.xml "$work"/*.out "$VFM_OUT/libvirt/" 2>/dev/null
	rm -rf "$work"
}
trap restore EXIT

ulimit -l unlimited
# 8 MiB of device memory: a short nested migration and quick digests
echo 8 >"$(mig "$A" params/memory)"
echo 8 >"$(mig "$B" params/memory)"
echo 8 >"$(mig "$B" allowed/memory)"
echo 0 >"$(knob "$A" dirty_rate)"
echo 0 >"$(knob "$B" dirty_rate)"
"$Q" --version | head -n1 | sed 's/^/# /'
LD_LIBRARY_PATH=$lvlib "$lv/usr/sbin/libvirtd" --version | sed 's/^/# /'

# The emulator libvirt runs: QEMU 10 with its firmware folders.
cat >"$work/virsh" <<X
#!/bin/sh
LD_LIBRARY_PATH=$lvlib exec $lv/usr/bin/virsh "\$@"
X
chmod 755 "$work/virsh"
virsh=$work/virsh
cat >"$work/qemu10" <<X
#!/bin/sh
exec $Q -L $prefix/usr/share/qemu -L /usr/share/seabios "\$@"
X
chmod 755 "$work/qemu10"
: >"$work/hidden" # not executable: libvirt does not take it for a QEMU

# start_daemon NAME HOST-UUID: a libvirtd in its own mount namespace.
start_daemon() {
	local w=$work/$1 b hide=
	mkdir -p "$w/etc/hooks/qemu.d" "$w/var/lib/libvirt" "$w/var/cache/libvirt" \
		"$w/var/log/libvirt" "$w/run" "$w/bin"
	ln -s /run "$w/var/run"
	cp "$hook" "$w/etc/hooks/qemu.d/vfmig"
	cp "$vfmig" "$w/bin/vfmig"
	cat >"$w/etc/libvirtd.conf" <<X
host_uuid = "$2"
auth_unix_rw = "none"
unix_sock_rw_perms = "0700"
log_filters = "1:qemu 1:util.hook 1:util.command 1:util.pci 1:hypervisor 3:qemu.qemu_monitor_json 3:qemu.qemu_monitor"
log_outputs = "2:file:/var/log/libvirt/libvirtd.log"
X
	# no virtlogd, cgroups, security driver or private /dev here
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
	# libvirt resolves its built-in QEMU user before it reads qemu.conf
	cp /etc/passwd "$w/passwd"
	cp /etc/group "$w/group"
	grep -q '^libvirt-qemu:' "$w/passwd" ||
		echo 'libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin' >>"$w/passwd"
	grep -q '^libvirt-qemu:' "$w/group" || echo 'libvirt-qemu:x:64055:' >>"$w/group"
	grep -q '^kvm:' "$w/group" || echo 'kvm:x:64056:' >>"$w/group"
	for b in /usr/bin/qemu-system-x86_64 /usr/bin/qemu-system-i386 /usr/bin/kvm \
		/usr/bin/qemu-kvm /usr/libexec/qemu-kvm; do
		[ -e "$b" ] && hide="$hide mount --bind '$work/hidden' '$b';"
	done
	# The prefix's libvirt: its drivers (only QEMU's: the others' start-up,
	# nodedev, network, nwfilter, storage, would cost minutes under TCG)
	# and data in the places it was built for.
	mkdir -p "$VFM_OUT/libvirt/$1"
	unshare -m --propagation private bash -c "
		set -e
		mount --bind '$lvlib/libvirt' '$libdir/libvirt'
		mount --bind '$lv/usr/share/libvirt' /usr/share/libvirt
		mount --bind '$w/etc' /etc/libvirt
		mount --bind '$w/var' /var
		mount --bind '$VFM_OUT/libvirt/$1' /var/log/libvirt
		mount --bind '$w/run' /run
		mount --bind '$w/bin' '$bindir'
		mount --bind '$w/passwd' /etc/passwd
		mount --bind '$w/group' /etc/group
		mount --bind '$prefix$libdir/qemu' '$libdir/qemu'
		$hide
		ulimit -l unlimited
		export LD_LIBRARY_PATH='$lvlib'
		exec '$lv/usr/sbin/libvirtd' --config /etc/libvirt/libvirtd.conf" >"$VFM_OUT/libvirt/$1/daemon.out" 2>&1 &
	pids+=($!)
}
# wait_daemon NAME LIMIT_S INDEX: wait until the daemon answers.
wait_daemon() {
	local t0=$SECONDS
	while [ $((SECONDS - t0)) -lt "$2" ]; do
		if ! kill -0 "${pids[$3]}" 2>/dev/null; then
			echo "# libvirtd '$1' exited after $((SECONDS - t0)) s"
			break
		fi
		if timeout 30 "$virsh" -c "$(uri "$1")" list --all >/dev/null 2>&1; then
			echo "# libvirtd '$1' answers after $((SECONDS - t0)) s"
			return 0
		fi
		sleep 1
	done
	echo "# libvirtd '$1' did not answer in $2 s:"
	sed "s/^/#   /" "$VFM_OUT/libvirt/$1/daemon.out"
	tail -n 20 "$VFM_OUT/libvirt/$1/libvirtd.log" 2>/dev/null | sed 's/^/#   /'
	return 1
}

t0=$SECONDS
start_daemon src 6a0b3c1e-0001-4c59-9b7a-0d1e2f3a4b5c
start_daemon dst 6a0b3c1e-0002-4c59-9b7a-0d1e2f3a4b5c
if wait_daemon src 600 0 && wait_daemon dst 300 1; then
	vfm_ok libvirt/daemons-up
	vfm_measure libvirt/daemons-up $((SECONDS - t0)) s
else
	vfm_not_ok libvirt/daemons-up "a libvirtd did not answer"
	exit 1
fi

# addr_xml BDF: the <address> of a host PCI function as libvirt writes it
addr_xml() {
	local d=${1%%:*} rest=${1#*:}
	local bus=${rest%%:*} sf=${rest#*:}
	printf "<address domain='0x%s' bus='0x%s' slot='0x%s' function='0x%s'/>" \
		"$d" "$bus" "${sf%%.*}" "${sf#*.}"
}
cat >"$work/dom.xml" <<X
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$dom</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <emulator>$work/qemu10</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    <hostdev mode='subsystem' type='pci' managed='no'>
      <source>$(addr_xml "$A")</source>
    </hostdev>
  </devices>
  <qemu:override>
    <qemu:device alias='hostdev0'>
      <qemu:frontend>
        <qemu:property name='enable-migration' type='string' value='on'/>
      </qemu:frontend>
    </qemu:device>
  </qemu:override>
</domain>
X
t0=$SECONDS
if ! timeout 600 "$virsh" -c "$S" create "$work/dom.xml" >"$work/create.out" 2>&1; then
	vfm_not_ok libvirt/domain-started "virsh create: $(tr '\n' ' ' <"$work/create.out") $(tail -n 5 "$VFM_OUT/libvirt/src/qemu/$dom.log" 2>/dev/null | tr '\n' ' ')"
	exit 1
fi
src_pid=$(qpid src)
if [ "$(state "$S")" = running ] && [ "$(cat "$(knob "$A" mig_state)")" = RUNNING ] &&
	grep -q 'enable-migration' "/proc/$src_pid/cmdline" 2>/dev/null; then
	vfm_ok libvirt/domain-started
else
	vfm_not_ok libvirt/domain-started "state '$(state "$S")', A $(cat "$(knob "$A" mig_state)"), QEMU pid '$src_pid': $(tr '\0' ' ' <"/proc/$src_pid/cmdline" 2>/dev/null)"
	exit 1
fi
vfm_measure libvirt/domain-start $((SECONDS - t0)) s
tr '\0' ' ' <"/proc/$src_pid/cmdline" | sed 's/^/# QEMU: /'
echo

# A's workload writes for a while, so that A's state is not a fresh
# device's; then its digest must hold still (nothing else writes it).
echo 4000000 >"$(knob "$A" dirty_rate)"
sleep 3
echo 0 >"$(knob "$A" dirty_rate)"
da=$(cat "$(mig "$A" state_digest)")
for _ in $(seq 1 20); do
	sleep 1
	now=$(cat "$(mig "$A" state_digest)")
	[ "$now" = "$da" ] && break
	da=$now
done
db0=$(cat "$(mig "$B" state_digest)")
if [ -n "$da" ] && [ "$da" != "$db0" ]; then
	vfm_ok libvirt/source-state-written
else
	vfm_not_ok libvirt/source-state-written "A's digest '$da', B's (fresh) '$db0'"
fi

meta=$("$vfmig" describe --libvirt-metadata "vfio:$A" 2>"$work/describe.out")
if [ -n "$meta" ] && timeout 120 "$virsh" -c "$S" metadata "$dom" --uri urn:vfmig:libvirt:1 \
	--key vfmig --live --set "$meta" >"$work/metadata.out" 2>&1 &&
	timeout 120 "$virsh" -c "$S" dumpxml "$dom" | grep -q "spec=\"vfio:$A\""; then
	vfm_ok libvirt/metadata-stored
else
	vfm_not_ok libvirt/metadata-stored "$(cat "$work/describe.out" "$work/metadata.out" | tr '\n' ' ')"
fi
# high downtime limit: nested TCG moves RAM slowly
timeout 120 "$virsh" -c "$S" migrate-setmaxdowntime "$dom" 30000 >/dev/null 2>&1
echo "# downtime limit: $(timeout 120 "$virsh" -c "$S" migrate-getmaxdowntime "$dom" 2>&1) ms"

# The destination's domain: the same, with the hostdev on B.
timeout 120 "$virsh" -c "$S" dumpxml --migratable "$dom" >"$work/a.xml"
sed "/<source>/,/<\/source>/ s|<address domain=[^>]*/>|$(addr_xml "$B")|" \
	"$work/a.xml" >"$work/b.xml"
if grep -qF "$(addr_xml "$B")" "$work/b.xml" && ! grep -qF "$(addr_xml "$A")" "$work/b.xml" &&
	grep -q "vfio:$A" "$work/b.xml"; then
	vfm_ok libvirt/destination-xml
else
	vfm_not_ok libvirt/destination-xml "b.xml does not hold B's address and A's descriptor"
fi
port=$((20000 + RANDOM % 20000))

# refused: B accepts only versions A does not have
echo "2.1.0-2.1.9" >"$(mig "$B" version_compatible)"
t0=$SECONDS
timeout 900 "$virsh" -c "$S" migrate --live "$dom" "$D_remote" --xml "$work/b.xml" \
	--migrateuri "tcp://127.0.0.1:$port" >"$work/refused.out" 2>&1
rc=$?
sed 's/^/# virsh: /' "$work/refused.out"
vfm_measure libvirt/refusal $((SECONDS - t0)) s
vfm_check refused/virsh-failed test "$rc" -ne 0
if grep -q 'Hook script execution failed' "$work/refused.out" &&
	grep -q "vfmig: hostdev $B (source vfio:$A): version_incompatible: " "$work/refused.out" &&
	grep -q "vfmig: refusing the migration of domain $dom" "$work/refused.out"; then
	vfm_ok refused/hook-sentence
else
	vfm_not_ok refused/hook-sentence "libvirt's error lacks the hook's version_incompatible sentence"
fi
vfm_check refused/source-running test "$(state "$S")" = running
if [ "$(qpid src)" = "$src_pid" ] && kill -0 "$src_pid" 2>/dev/null; then
	vfm_ok refused/same-qemu
else
	vfm_not_ok refused/same-qemu "QEMU pid '$(qpid src)', was $src_pid"
fi
vfm_check refused/nothing-at-destination test -z "$(state "$D")"
vfm_check refused/source-device-running test "$(cat "$(knob "$A" mig_state)")" = RUNNING
vfm_check refused/source-digest-unchanged test "$(cat "$(mig "$A" state_digest)")" = "$da"
vfm_check refused/destination-untouched test "$(cat "$(mig "$B" state_digest)")" = "$db0"
echo "$compat_b" >"$(mig "$B" version_compatible)"

# compatible: the same migration completes.
# Once libvirt ends the source QEMU, closing A clears its state: the driver
# keeps the digest of what A held, stopped, at that close in
# migration/closed_digest (A's state_digest is then a fresh device's). The
# one there now is an older close's, if any: the migration must replace it.
ca0=$(cat "$(mig "$A" closed_digest)")
t0=$SECONDS
timeout 1200 "$virsh" -c "$S" migrate --live "$dom" "$D_remote" --xml "$work/b.xml" \
	--migrateuri "tcp://127.0.0.1:$((port + 1))" --verbose >"$work/migrate.out" 2>&1
rc=$?
tr '\r' '\n' <"$work/migrate.out" | grep -v '^$' | tail -n 5 | sed 's/^/# virsh: /'
vfm_measure libvirt/migration $((SECONDS - t0)) s
# virsh returns once libvirt ended the source QEMU; the close may lag it
for _ in $(seq 1 60); do
	ca=$(cat "$(mig "$A" closed_digest)")
	[ -n "$ca" ] && [ "$ca" != "$ca0" ] && break
	sleep 1
done
tail -n 12 "$(knob "$A" mig_trace)" | sed 's/^/# A trace: /'
if [ "$rc" -eq 0 ]; then
	vfm_ok migrate/virsh-completed
else
	vfm_not_ok migrate/virsh-completed "virsh migrate exited $rc: $(tr '\r\n' '  ' <"$work/migrate.out")"
fi
vfm_check migrate/destination-running test "$(state "$D")" = running
vfm_check migrate/gone-from-source test -z "$(state "$S")"
dst_pid=$(qpid dst)
if [ -n "$dst_pid" ] && tr '\0' ' ' <"/proc/$dst_pid/cmdline" 2>/dev/null | grep -q "\"host\":\"$B\"\|host=$B"; then
	vfm_ok migrate/destination-holds-b
else
	vfm_not_ok migrate/destination-holds-b "destination QEMU '$dst_pid' does not hold $B"
fi
vfm_check migrate/destination-device-running test "$(cat "$(knob "$B" mig_state)")" = RUNNING
db=$(cat "$(mig "$B" state_digest)")
if [ -z "$ca" ] || [ "$ca" = "$ca0" ]; then
	vfm_not_ok migrate/digest-equal "A has no closed_digest from this migration ('$ca', before it '$ca0'; B has $db)"
elif [ "$db" = "$ca" ] && [ "$db" != "$db0" ]; then
	vfm_ok migrate/digest-equal
else
	vfm_not_ok migrate/digest-equal "A held $ca when closed, B has $db (fresh: $db0)"
fi
exit 0
