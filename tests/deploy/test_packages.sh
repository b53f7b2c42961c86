#!/usr/bin/env bash
# The Debian packages: configure this tree for /usr in a scratch build
# folder, build what the packages hold, run cpack; then check both .deb
# files (control fields, maintainer scripts, conffiles, contents), install
# them into a scratch root (dpkg-deb -x), run `vfmig --version` from there,
# verify the packaged units against the packaged binary, and run lintian.
#
#   test_packages.sh SOURCE_DIR VERSION
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
src=$1 ver=$2
need dpkg-deb dpkg
need dpkg-buildflags dpkg-dev

work=$(mktemp -d /tmp/vfmig-pkg.XXXXXX)
trap 'rm -rf "$work"' EXIT
b=$work/build
echo "== configure + build for /usr ($b)"
# Debian's hardening flags, as a Debian build would use them.
CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
	LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
	cmake -S "$src" -B "$b" -DCMAKE_INSTALL_PREFIX=/usr -DVFM_KERNEL=OFF \
	-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cfg.log" 2>&1 ||
	{ cat "$work/cfg.log"; fail "configure"; }
cmake --build "$b" -j "$(nproc)" --target vfmig vfmig-bench vfmig_man vfmig_changelog \
	>"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log"; fail "build"; }
(cd "$b" && cpack) >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; fail "cpack"; }
deb=$b/packages/vfmig_${ver}_amd64.deb
dkmsdeb=$b/packages/vfmig-dkms_${ver}_all.deb
[ -f "$deb" ] && [ -f "$dkmsdeb" ] || { ls "$b/packages"; fail "expected $deb and $dkmsdeb"; }
ls -l "$b"/packages/*.deb | awk '{print $5, $NF}'

field() { dpkg-deb -f "$1" "$2"; }
[ "$(field "$deb" Version)" = "$ver" ] || fail "vfmig version"
field "$deb" Depends | grep 'libxml2-utils' >/dev/null || fail "vfmig does not depend on libxml2-utils (the hook)"
field "$deb" Depends | grep 'liburing2' >/dev/null || fail "shlibdeps did not run"
[ "$(field "$dkmsdeb" Architecture)" = all ] || fail "vfmig-dkms is not Architecture: all"
field "$dkmsdeb" Depends | grep '^dkms' >/dev/null || fail "vfmig-dkms does not depend on dkms"
dpkg-deb --ctrl-tarfile "$dkmsdeb" | tar -tf - | grep -x './postinst' >/dev/null || fail "vfmig-dkms has no postinst"
dpkg-deb --ctrl-tarfile "$dkmsdeb" | tar -tf - | grep -x './prerm' >/dev/null || fail "vfmig-dkms has no prerm"
dpkg-deb --ctrl-tarfile "$dkmsdeb" | tar -xOf - ./postinst | grep "common.postinst vfmig $ver" >/dev/null ||
	fail "vfmig-dkms postinst does not run DKMS for vfmig $ver"
dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles >"$work/conffiles"
for f in /etc/libvirt/hooks/qemu.d/vfmig; do
	grep -qx "$f" "$work/conffiles" || fail "$f is not a conffile"
done

root=$work/root
dpkg-deb -x "$deb" "$root"
dpkg-deb -x "$dkmsdeb" "$root"
for f in usr/bin/vfmig usr/bin/vfmig-bench usr/libexec/vfmig/vfmig-bind \
	lib/systemd/system/vfmig-recv@.service lib/systemd/system/vfmig-send@.service \
	lib/udev/rules.d/90-vfmig-bind.rules lib/modprobe.d/vfmig.conf \
	etc/libvirt/hooks/qemu.d/vfmig usr/share/man/man1/vfmig.1.gz \
	usr/share/bash-completion/completions/vfmig usr/share/doc/vfmig/copyright \
	"usr/src/vfmig-$ver/dkms.conf" "usr/src/vfmig-$ver/Kbuild"; do
	[ -e "$root/$f" ] || fail "/$f is not in the packages"
done
out=$("$root/usr/bin/vfmig" --version)
[ "$out" = "vfmig $ver" ] || fail "vfmig --version from the package printed '$out'"
echo "vfmig --version from the package: $out"
grep -q '^ExecStart=/usr/bin/vfmig ' "$root/lib/systemd/system/vfmig-send@.service" ||
	fail "the packaged unit does not run /usr/bin/vfmig"
grep -q '/usr/libexec/vfmig/vfmig-bind' "$root/lib/udev/rules.d/90-vfmig-bind.rules" ||
	fail "the packaged udev rule does not run /usr/libexec/vfmig/vfmig-bind"
grep -q '^vfmig=${VFMIG:-/usr/bin/vfmig}' "$root/etc/libvirt/hooks/qemu.d/vfmig" ||
	fail "the packaged hook does not run /usr/bin/vfmig"
if command -v systemd-analyze >/dev/null; then
	cp -a /lib/systemd/system/*.target /lib/systemd/system/*.slice "$root/lib/systemd/system/"
	for k in recv send; do
		# --man=no: verify would run the host's man, not look in the root.
		systemd-analyze verify --root="$root" --man=no "vfmig-$k@0f8fad5b-d9cb-469f-a165-70867728950e.service" \
			>"$work/verify.txt" 2>&1 || true
		[ ! -s "$work/verify.txt" ] || { cat "$work/verify.txt"; fail "packaged vfmig-$k@ does not verify"; }
	done
	echo "packaged units verify"
fi

if command -v lintian >/dev/null; then
	# Each tag lintian may still print is in deploy/debian/lintian-expected
	# with the reason; anything else fails.
	lintian --pedantic --no-tag-display-limit "$deb" "$dkmsdeb" >"$work/lintian.txt" 2>&1 || true
	sed -n 's/^\([EWIP]\): \([^ ]*\): \([^ ]*\).*/\2: \3/p' "$work/lintian.txt" | sort -u >"$work/tags"
	grep -v '^#' "$src/deploy/debian/lintian-expected" 2>/dev/null | sed 's/ *#.*//' |
		sed '/^$/d' | sort -u >"$work/expected" || true
	unexpected=$(comm -23 "$work/tags" "$work/expected")
	if [ -n "$unexpected" ]; then
		cat "$work/lintian.txt"
		fail "lintian: unexplained tags: $unexpected"
	fi
	echo "lintian --pedantic: $(wc -l <"$work/tags") distinct tags, all explained in deploy/debian/lintian-expected"
elif [ "${CI:-}" = true ]; then
	fail "lintian is missing (scripts/setup.sh installs it)"
else
	echo "lintian not installed: not run (scripts/setup.sh installs it)"
fi
echo "ok: packages built, installed into a scratch root, vfmig runs from it"
