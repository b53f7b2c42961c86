#!/usr/bin/env bash
# Boot a TCG guest on the newest installed 6.12+ Debian kernel and run
# vfmig's guest tests in it (or one script). See tests/vm/README.md.
#
# usage: tests/vm/run.sh [options]              every suite in guest.d/
#        tests/vm/run.sh [options] --script FILE [ARG...]
#        tests/vm/run.sh [options] --shell      interactive guest shell
#
#   --build DIR     build tree holding the guest programs (tests/vm/) and,
#                   unless --ko says otherwise, the module; the initramfs
#                   cache and the results go there too
#                   (default: $VFM_BUILD_DIR, else build/gcc, else build)
#   --ko FILE       vfmig_stub.ko to load (default: $VFM_KO, else searched
#                   in DIR/kernel, kernel/, DIR)
#   --ko-params S   module parameters for insmod ($VFM_KO_PARAMS)
#   --suites PATS   only the suites whose names match these shell patterns
#                   (space separated, e.g. '20-* 3?-rdma'; $VFM_SUITES)
#   --timeout S     hard limit on the whole guest run (default 3000 s,
#                   $VFM_VM_TIMEOUT)
#   --mem MB        guest memory (default 3072, $VFM_VM_MEM)
#   --smp N         guest vCPUs (default 2, $VFM_VM_SMP)
#   --env NAME=VAL  export NAME=VAL to the guest's suites and scripts
#                   (repeatable; e.g. VFM_MIG_ONLY=fsm,transfer)
#   -v, --verbose   stream the guest console while it runs
#
# Exit status: 0 all passed; 1 a failure (or the guest did not finish in
# time); 77 skipped: no QEMU, no 6.12+ kernel, no module (the suites that
# do not need it still run and failures still count), or VFM_SKIP_VM=1.
# With CI=true those skips (except VFM_SKIP_VM=1) are failures, and CI=true
# reaches the suites.
# With --script: the script's own exit status.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

build=${VFM_BUILD_DIR:-}
ko=${VFM_KO:-}
ko_params=${VFM_KO_PARAMS:-}
suites=${VFM_SUITES:-}
limit=${VFM_VM_TIMEOUT:-3000}
mem=${VFM_VM_MEM:-3072}
smp=${VFM_VM_SMP:-2}
mode=suites
verbose=0
script=
script_args=()
guest_env=()

die() {
	echo "run.sh: $*" >&2
	exit 2
}
# skip WHY: the machine lacks something. With CI=true, what scripts/setup.sh
# --vm installs (QEMU, busybox, cpio, the kernel, the module's headers) must
# be there: a skip is then a failure. VFM_SKIP_VM=1 stays a skip.
skip() {
	if [ "${CI:-}" = true ] && [ "${VFM_SKIP_VM:-0}" != 1 ]; then
		echo "run.sh: FAIL (CI=true, a skip is a failure): $*"
		exit 1
	fi
	echo "run.sh: SKIP: $*"
	exit 77
}

while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--ko) ko=$2; shift 2 ;;
	--ko-params) ko_params=$2; shift 2 ;;
	--suites) suites=$2; shift 2 ;;
	--timeout) limit=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--env)
		[[ ${2:-} =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env wants NAME=VALUE"
		guest_env+=("$2")
		shift 2
		;;
	-v | --verbose) verbose=1; shift ;;
	--shell) mode=shell; shift ;;
	--script)
		mode=script
		script=${2:-}
		[ -n "$script" ] || die "--script needs a file"
		shift 2
		script_args=("$@")
		break
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown option '$1' (try --help)" ;;
	esac
done
[[ $limit =~ ^[0-9]+$ ]] || die "--timeout wants seconds, not '$limit'"
[ "$mode" != script ] || [ -r "$script" ] || die "cannot read script '$script'"

if [ -z "$build" ]; then
	if [ -d "$root/build/gcc" ]; then build=$root/build/gcc; else build=$root/build; fi
fi
mkdir -p "$build"
build=$(cd "$build" && pwd)

# ---- what we need on the host ------------------------------------------
[ "${VFM_SKIP_VM:-0}" = 1 ] && skip "VFM_SKIP_VM=1: guest tests left out"
qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || skip "qemu-system-x86_64 is not installed (run scripts/setup.sh --vm)"
busybox=
for b in /bin/busybox /usr/bin/busybox; do
	if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then
		busybox=$b
		break
	fi
done
[ -n "$busybox" ] || skip "no static busybox (install busybox-static: scripts/setup.sh --vm)"
command -v cpio >/dev/null || skip "cpio is not installed (scripts/setup.sh --vm)"

# The module, and whether it suits a kernel we can boot.
ko_reason=
if [ -n "$ko" ]; then
	[ -r "$ko" ] || ko_reason="$ko does not exist"
else
	for c in "$build/kernel/vfmig_stub.ko" "$root/kernel/vfmig_stub.ko"; do
		[ -r "$c" ] && { ko=$c; break; }
	done
	[ -n "$ko" ] || ko=$(find "$build" -maxdepth 4 -name vfmig_stub.ko -print -quit 2>/dev/null)
	[ -n "$ko" ] || ko_reason="no vfmig_stub.ko in $build/kernel, $root/kernel or $build"
fi
ko_kver=
if [ -z "$ko_reason" ]; then
	ko=$(realpath "$ko")
	ko_kver=$(modinfo -F vermagic "$ko" 2>/dev/null | awk '{ print $1 }')
fi

# The guest kernel: the module's, else the newest installed 6.12+.
kver=${VFM_KVER:-}
if [ -z "$kver" ]; then
	cands=()
	for v in /boot/vmlinuz-*; do
		v=${v#/boot/vmlinuz-}
		[ -e "/lib/modules/$v/modules.dep" ] || continue
		[ "$(printf '%s\n6.12\n' "${v%%-*}" | sort -V | head -n1)" = 6.12 ] || continue
		cands+=("$v")
	done
	[ ${#cands[@]} -gt 0 ] ||
		skip "no 6.12+ kernel in /boot with modules in /lib/modules (run scripts/setup.sh --vm)"
	kver=$(printf '%s\n' "${cands[@]}" | sort -V | tail -n1)
	for v in "${cands[@]}"; do
		[ "$v" = "$ko_kver" ] && kver=$v
	done
fi
vmlinuz=/boot/vmlinuz-$kver
[ -r "$vmlinuz" ] || skip "cannot read $vmlinuz"
if [ -z "$ko_reason" ] && [ "$ko_kver" != "$kver" ]; then
	ko_reason="$ko is built for '$ko_kver', the guest runs $kver"
fi
if [ -n "$ko_reason" ]; then
	echo "run.sh: vfmig_stub.ko unavailable: $ko_reason; the tests that need it will skip"
	ko=
fi

# ---- initramfs (cached) --------------------------------------------------
cache=$build/vm-cache
mkdir -p "$cache"
mods=(netfs 9pnet 9pnet_virtio 9p)
key=$({
	echo "$kver"
	sha256sum "$busybox" "$here/initramfs-init.sh" | awk '{ print $1 }'
	for m in "${mods[@]}"; do modinfo -k "$kver" -n "$m"; done
} | sha256sum | cut -c1-16)
initrd=$cache/initramfs-$kver-$key.cpio
if [ ! -s "$initrd" ]; then
	tmp=$(mktemp -d "$cache/initramfs.XXXXXX")
	mkdir -p "$tmp/bin" "$tmp/modules" "$tmp/dev"
	cp "$busybox" "$tmp/bin/busybox"
	install -m 0755 "$here/initramfs-init.sh" "$tmp/init"
	for m in "${mods[@]}"; do
		f=$(modinfo -k "$kver" -n "$m" 2>/dev/null) || skip "module $m missing for kernel $kver"
		case "$f" in
		*.xz) xz -dc "$f" ;;
		*.zst) zstd -dcq "$f" ;;
		*.gz) gzip -dc "$f" ;;
		*) cat "$f" ;;
		esac >"$tmp/modules/$m.ko"
	done
	[ "$(id -u)" -eq 0 ] && mknod -m 0600 "$tmp/dev/console" c 5 1
	(cd "$tmp" && find . -print0 | cpio --null -o -H newc --quiet) >"$initrd.part"
	mv "$initrd.part" "$initrd"
	rm -rf "$tmp"
	find "$cache" -name 'initramfs-*.cpio' ! -newer "$initrd" ! -name "${initrd##*/}" -delete
fi

# ---- results export --------------------------------------------------------
runs=$build/vm-results
mkdir -p "$runs"
out=$runs/run-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$out"
ln -sfn "${out##*/}" "$runs/last"
# keep the newest 5 runs
find "$runs" -maxdepth 1 -name 'run-*' -type d | sort | head -n -5 | xargs -r rm -rf

# Host paths that the guest must see although it mounts tmpfs over their
# parent (see initramfs-init.sh).
keep=
for p in "$root" "$build" ${ko:+"$(dirname "$ko")"}; do
	case "$p" in
	/tmp/* | /run/* | /var/tmp/* | /var/log/* | /root/*) keep="$keep $p" ;;
	esac
done

{
	printf 'VFM_MAIN=%q\n' "$here/guest-main.sh"
	printf 'VFM_KEEP=%q\n' "${keep# }"
	printf 'VFM_MODE=%q\n' "$mode"
	printf 'VFM_ROOT=%q\n' "$root"
	printf 'VFM_BUILD=%q\n' "$build"
	printf 'VFM_KO=%q\n' "$ko"
	printf 'VFM_KO_REASON=%q\n' "$ko_reason"
	printf 'VFM_KO_PARAMS=%q\n' "$ko_params"
	printf 'VFM_SUITES=%q\n' "$suites"
	printf 'VFM_SUITE_TIMEOUT=%q\n' "${VFM_SUITE_TIMEOUT:-600}"
	printf 'export VFM_ROOT VFM_BUILD VFM_KO VFM_KO_REASON VFM_KO_PARAMS VFM_SUITES VFM_SUITE_TIMEOUT\n'
	# CI=true reaches the suites: there a skip for what setup.sh installs fails
	[ -z "${CI:-}" ] || printf 'export CI=%q\n' "$CI"
	for e in "${guest_env[@]}"; do
		printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"
	done
} >"$out/guest.env"
if [ "$mode" = script ]; then
	cp "$script" "$out/script.sh"
	[ ${#script_args[@]} -eq 0 ] || printf '%q ' "${script_args[@]}" >"$out/script-args"
fi

# ---- boot -------------------------------------------------------------------
# Four edu functions, each alone in an IOMMU group, in BDF order: the first
# two are the guest's A (source) and B (destination); 48-device-set binds
# the other two for a set of devices migrated together.
cmdline="console=ttyS0 rdinit=/init intel_iommu=on no_timer_check panic=-1 mitigations=off loglevel=4"
# shellcheck disable=SC2054 # commas belong to QEMU's option syntax
cmd=("$qemu" -nodefaults -no-user-config -display none -no-reboot
	-accel tcg,thread=multi -cpu max -smp "$smp" -m "$mem"
	-machine q35,kernel-irqchip=split -device intel-iommu,intremap=on
	-kernel "$vmlinuz" -initrd "$initrd" -append "$cmdline"
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=$out,mount_tag=vfmout,security_model=none"
	-device edu -device edu -device edu -device edu
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0
	-monitor none)
if [ "$mode" = shell ]; then
	cmd+=(-serial mon:stdio)
else
	cmd+=(-serial "file:$out/console.log")
fi
printf '%q ' "${cmd[@]}" >"$out/qemu-cmdline"
echo >>"$out/qemu-cmdline"

echo "run.sh: kernel $kver, ${mem} MiB, $smp vCPUs (TCG); module: ${ko:-none}"
echo "run.sh: results in $out; limit ${limit}s"

if [ "$mode" = shell ]; then
	timeout -k 15 "$limit" "${cmd[@]}" || true
	exit "$(cat "$out/exit-code" 2>/dev/null || echo 1)"
fi

t0=$(date +%s.%N)
timeout -k 15 "$limit" "${cmd[@]}" </dev/null >"$out/qemu.log" 2>&1 &
qpid=$!
trap 'kill "$qpid" 2>/dev/null' EXIT INT TERM
: >"$out/console.log"
tailpid=
if [ "$verbose" = 1 ] || [ "$mode" = script ]; then
	tail -n +1 -f --pid="$qpid" "$out/console.log" &
	tailpid=$!
fi
boot_wall=
while kill -0 "$qpid" 2>/dev/null; do
	if [ -z "$boot_wall" ] && [ -s "$out/boot-uptime" ]; then
		boot_wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	fi
	sleep 0.2
done
qrc=0
wait "$qpid" || qrc=$?
trap - EXIT INT TERM
[ -z "$tailpid" ] || wait "$tailpid" 2>/dev/null || true
wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

boot_up=$(cat "$out/boot-uptime" 2>/dev/null || true)
[ -n "$boot_wall" ] || [ -z "$boot_up" ] || boot_wall='?'

echo
if [ -n "$boot_up" ]; then
	echo "run.sh: guest boot: ${boot_up}s guest uptime, ${boot_wall}s wall from QEMU start to the test driver"
fi

problem=
if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
	problem="the guest ran past the ${limit}s limit and was killed"
elif [ ! -s "$out/exit-code" ]; then
	problem="the guest stopped without finishing (QEMU status $qrc)"
fi

show_tail() {
	if [ -s "$out/dmesg.txt" ] && [ -s "$out/summary" ]; then
		# the guest finished: its output is above, add the kernel's view
		echo "run.sh: ---- last 40 lines of the guest kernel log ($out/dmesg.txt)"
		tail -n 40 "$out/dmesg.txt"
	else
		echo "run.sh: ---- last 60 lines of the guest console ($out/console.log)"
		tail -n 60 "$out/console.log"
	fi
	echo "run.sh: ----"
	[ -s "$out/qemu.log" ] && { echo "run.sh: QEMU said:"; cat "$out/qemu.log"; }
	return 0
}

if [ "$mode" = script ]; then
	if [ -n "$problem" ]; then
		echo "run.sh: $problem"
		show_tail
		exit 1
	fi
	rc=$(cat "$out/exit-code")
	echo "run.sh: script exited with status $rc (${wall}s in all)"
	exit "$rc"
fi

# Suites mode: the guest output, then the verdict.
if [ -s "$out/driver.log" ]; then
	echo "run.sh: ---- guest test output ($out/driver.log)"
	[ "$verbose" = 1 ] || cat "$out/driver.log"
	echo "run.sh: ----"
fi
if [ -s "$out/measurements" ]; then
	echo "run.sh: measurements:"
	sed 's/^/  /' "$out/measurements"
fi
if [ -n "$problem" ] || [ ! -s "$out/summary" ]; then
	echo "run.sh: ${problem:-the guest wrote no summary}"
	show_tail
	exit 1
fi
passed=$(awk '$1 == "passed" { print $2 }' "$out/summary")
failed=$(awk '$1 == "failed" { print $2 }' "$out/summary")
skipped=$(awk '$1 == "skipped" { print $2 }' "$out/summary")
# With CI=true, a guest check skipped because the module is missing fails.
if [ "${CI:-}" = true ] && [ -n "$ko_reason" ]; then
	echo "run.sh: FAIL (CI=true): vfmig_stub.ko not built ($ko_reason)"
	exit 1
fi
if [ "$failed" -gt 0 ]; then
	echo "run.sh: failures:"
	grep '^not ok ' "$out/results.tap" | sed 's/^/  /'
	show_tail
fi
if [ "$skipped" -gt 0 ]; then
	echo "run.sh: skipped:"
	grep '^skip ' "$out/results.tap" | sed 's/^/  /'
fi
echo "run.sh: $passed passed, $failed failed, $skipped skipped (${wall}s in all)"
[ "$failed" -eq 0 ] || exit 1
if [ -n "$ko_reason" ]; then
	echo "run.sh: SKIP: vfmig_stub.ko not built ($ko_reason)"
	exit 77
fi
[ "$passed" -gt 0 ] || skip "every guest test skipped"
exit 0
