#!/usr/bin/env bash
# The systemd units as installed (`cmake --install` into a scratch root,
# with this build's prefix): `systemd-analyze verify` of an instance of each
# template, `systemd-analyze security --offline` under a threshold, and the
# properties operators rely on: the agent's path from the install prefix and
# present, no [Install] section (a migration never re-runs at boot), the
# secret as a credential, memlock, the success exit codes, the sandbox.
#
#   test_systemd.sh BUILD_DIR
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
build=$1
need systemd-analyze systemd

work=$(mktemp -d /tmp/vfmig-units.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
stage "$build" vfmig "$root"
# verify resolves the units' dependencies (network-online.target, the
# slices) inside --root: give it the system's own targets and slices.
mkdir -p "$root/lib/systemd/system"
cp -a /lib/systemd/system/*.target /lib/systemd/system/*.slice "$root/lib/systemd/system/"

id=3f0c1b2a-6d4e-4c59-9b7a-0d1e2f3a4b5c
for kind in recv send; do
	unit=$(find "$root" -name "vfmig-$kind@.service")
	[ -n "$unit" ] || fail "vfmig-$kind@.service not installed"
	echo "== ${unit#"$root"}"
	# verify only warns (exit 0) on a line it cannot parse: any output fails.
	systemd-analyze verify --root="$root" --man=no "vfmig-$kind@$id.service" \
		>"$work/verify.txt" 2>&1 || { cat "$work/verify.txt"; fail "systemd-analyze verify"; }
	[ ! -s "$work/verify.txt" ] || { cat "$work/verify.txt"; fail "systemd-analyze verify warned"; }
	echo "systemd-analyze verify: clean"
	systemd-analyze security --offline=true --root="$root" --threshold=50 \
		--no-pager "vfmig-$kind@$id.service" >"$work/sec.txt" 2>&1 ||
		{ cat "$work/sec.txt"; fail "exposure of vfmig-$kind@ above 5.0 (threshold 50)"; }
	grep 'Overall exposure' "$work/sec.txt"

	exe=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$unit")
	[ -x "$root$exe" ] || fail "ExecStart names $exe, not installed in the root"
	grep -q '^\[Install\]' "$unit" && fail "vfmig-$kind@ has an [Install] section"
	grep -q '^LoadCredential=secret:/run/vfmig/%i/secret$' "$unit" ||
		fail "the secret is not a credential"
	grep -q -- '--secret-file %d/secret' "$unit" || fail "the agent does not read the credential"
	grep -q '/etc/vfmig' "$unit" && fail "vfmig-$kind@ still reads /etc/vfmig"
	for kv in Type=notify NotifyAccess=main LimitMEMLOCK=infinity SuccessExitStatus=3 \
		Restart=no NoNewPrivileges=yes \
		ProtectSystem=strict PrivateTmp=yes DevicePolicy=closed 'DeviceAllow=char-vfio rw' \
		'CapabilityBoundingSet=' 'LogsDirectory=vfmig'; do
		grep -qx -- "$kv" "$unit" || fail "vfmig-$kind@ lacks $kv"
	done
done
echo "ok: units verified"
