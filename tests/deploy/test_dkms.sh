#!/usr/bin/env bash
# The DKMS path as an operator takes it: the dkms component of
# `cmake --install` (what the vfmig-dkms package ships) in a scratch root,
# then `dkms add`, `build`, `install` and `remove` against the newest
# installed 6.12+ kernel headers. DKMS's own trees are scratch folders too
# (--sourcetree/--dkmstree/--installtree, --no-depmod), so the machine's
# /var/lib/dkms and /lib/modules are not touched. This host cannot load
# modules; the test checks what DKMS built: the module's name and vermagic.
#
#   test_dkms.sh BUILD_DIR VERSION
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
build=$1 ver=$2

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
dk status | grep "vfmig/$ver, $kver, .*: installed" >/dev/null || { dk status; fail "dkms status"; }
dk remove --all >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "dkms remove"; }
[ -z "$(find "$work/modules" -name 'vfmig_stub.ko*')" ] || fail "dkms remove left the module"
echo "ok: dkms add/build/install/remove of vfmig/$ver for $kver"
