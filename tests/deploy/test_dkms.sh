#!/usr/bin/env bash
# The DKMS path as an operator takes it: the dkms component of
# `cmake --install` (what the vfmig-dkms package ships) in a scratch root,
# then `dkms add`, `build`, `install` and `remove` against the newest
# installed 6.12+ kernel headers. DKMS's own trees are scratch folders too
# (--sourcetree/--dkmstree/--installtree, --no-depmod), so the machine's
# /var/lib/dkms and /lib/modules are not touched. This host cannot load
# modules; the test checks what DKMS built: the module's name and vermagic.
# It keeps a copy of the module DKMS installed (decompressed) in
# BUILD_DIR/dkms-out/vfmig_stub.ko, with vfmig_stub.info (kernel, vermagic,
# srcversion, build ID) beside it: the guest suite tests/vm/guest.d/26-dkms-module.sh
# loads that file. A copy from an earlier run is removed first.
#
#   test_dkms.sh BUILD_DIR VERSION
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
build=$1 ver=$2
out=$build/dkms-out
# never leave an earlier run's module for the guest suite
rm -rf "$out"

need dkms dkms
kver=""
for b in $(ls -d /lib/modules/*/build 2>/dev/null | sort -rV); do
	v=$(basename "$(dirname "$b")")
	case $v in 6.1[2-9]* | 6.[2-9][0-9]* | [7-9].*)
		if [ -f "$b/Makefile" ]; then
			kver=$v
			break
		fi
		;;
	esac
done
if [ -z "$kver" ]; then
	[ "${CI:-}" = true ] && fail "no 6.12+ kernel headers (scripts/setup.sh --vm installs them)"
	skip "no 6.12+ kernel headers in /lib/modules (scripts/setup.sh --vm installs them)"
fi

work=$(mktemp -d /tmp/vfmig-dkms.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
# DKMS installs only into a kernel folder that exists, as /lib/modules/<kver>.
mkdir -p "$work/dkms" "$work/modules/$kver"
stage "$build" dkms "$root"
src=$root/usr/src/vfmig-$ver
[ -f "$src/dkms.conf" ] || fail "no $src/dkms.conf after install"
[ -f "$src/Kbuild" ] || fail "no Kbuild at the top of $src (DKMS builds there)"
[ -f "$src/include/uapi/vfmig.h" ] || fail "no include/uapi/vfmig.h in $src"

dk() { # ACTION [ARGS]: dkms on the scratch trees
	dkms "$@" -m vfmig -v "$ver" --sourcetree "$root/usr/src" \
		--dkmstree "$work/dkms" --installtree "$work/modules" --no-depmod
}
echo "dkms add/build/install vfmig/$ver for $kver"
dk add >"$work/add.log" 2>&1 || { cat "$work/add.log"; fail "dkms add"; }
if ! dk build -k "$kver" -j "$(nproc)" >"$work/build.log" 2>&1; then
	cat "$work/build.log"
	cat "$work/dkms/vfmig/$ver/build/make.log" 2>/dev/null || true
	fail "dkms build for $kver"
fi
dk install -k "$kver" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dkms install"; }
ko=$(find "$work/modules/$kver" -name 'vfmig_stub.ko*' | head -n1)
[ -n "$ko" ] || { find "$work/modules" | head; fail "no vfmig_stub.ko under the install tree"; }
echo "installed: ${ko#"$work/modules/"}"
case $ko in */updates/dkms/*) ;; *) fail "module not in updates/dkms: $ko" ;; esac
name=$(modinfo -F name "$ko")
vermagic=$(modinfo -F vermagic "$ko")
[ "$name" = vfmig_stub ] || fail "module name is '$name'"
case $vermagic in "$kver "*) ;; *) fail "vermagic '$vermagic' is not for $kver" ;; esac
echo "modinfo: name $name, vermagic $vermagic"

# The installed module for the guest suite, uncompressed (insmod of the
# guest reads it as is; DKMS may have compressed it as the kernel does).
mkdir -p "$work/out"
copy=$work/out/vfmig_stub.ko # modinfo takes only a file named *.ko*
case $ko in
*.ko) cp "$ko" "$copy" ;;
*.ko.xz) xz -dc "$ko" >"$copy" ;;
*.ko.zst) zstd -qdc "$ko" >"$copy" ;;
*.ko.gz) gzip -dc "$ko" >"$copy" ;;
*) fail "unknown module file type: $ko" ;;
esac || fail "cannot decompress $ko"
if [ "$(modinfo -F name "$copy")" != vfmig_stub ] || [ "$(modinfo -F vermagic "$copy")" != "$vermagic" ]; then
	fail "the decompressed copy is not the installed module"
fi
# What the guest suite tells the module by: srcversion (only with
# MODULE_VERSION) and the GNU build ID (/sys/module/*/notes/ in the guest).
srcversion=$(modinfo -F srcversion "$copy")
build_id=$(readelf -n "$copy" 2>/dev/null | sed -n 's/.*Build ID: *//p' | head -n1)
[ -n "$srcversion$build_id" ] ||
	fail "the module has neither a srcversion nor a GNU build ID to identify it by"
dk status | grep "vfmig/$ver, $kver, .*: installed" >/dev/null || { dk status; fail "dkms status"; }
dk remove --all >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "dkms remove"; }
[ -z "$(find "$work/modules" -name 'vfmig_stub.ko*')" ] || fail "dkms remove left the module"
# kept only when every check passed
mkdir -p "$out"
mv "$copy" "$out/vfmig_stub.ko"
printf 'kernel=%s\nversion=%s\nvermagic=%s\nsrcversion=%s\nbuild_id=%s\n' \
	"$kver" "$ver" "$vermagic" "$srcversion" "$build_id" >"$out/vfmig_stub.info"
echo "kept: $out/vfmig_stub.ko (srcversion '$srcversion', build ID $build_id)"
echo "ok: dkms add/build/install/remove of vfmig/$ver for $kver"
