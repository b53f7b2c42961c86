#!/usr/bin/env bash
# deploy/bin/vfmig-bind (what the udev rule runs) against a fake sysfs whose
# "kernel" (VFMIG_FAKE_KERNEL) does what the PCI core does on each write:
# a function held by its native driver is unbound, gets driver_override and
# is reprobed onto vfmig_stub; a function already there is left alone;
# --unbind gives it back to the native driver; a bad address is refused.
# Also: the installed udev rule runs the installed vfmig-bind.
#
#   test_bind.sh BUILD_DIR
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
build=$1
work=$(mktemp -d /tmp/vfmig-bind.XXXXXX)
trap 'rm -rf "$work"' EXIT
stage "$build" vfmig "$work/root"
rule=$(find "$work/root" -name 90-vfmig-bind.rules)
bind=$(find "$work/root" -name vfmig-bind -type f)
[ -n "$rule" ] && [ -x "$bind" ] || fail "udev rule or vfmig-bind not installed"
grep -q "RUN+=\"${bind#"$work/root"} \$kernel vfmig_stub\"" "$rule" ||
	fail "the udev rule does not run the installed vfmig-bind: $(grep RUN "$rule")"

export VFMIG_SYSFS=$work/sys
bdf=0000:00:04.0
dev=$VFMIG_SYSFS/bus/pci/devices/$bdf
mkdir -p "$dev" "$VFMIG_SYSFS/bus/pci/drivers/edu_native" "$VFMIG_SYSFS/bus/pci/drivers/vfmig_stub"
ln -s ../../drivers/edu_native "$dev/driver"
cat >"$work/kernel" <<'K'
#!/usr/bin/env bash
# FILE VALUE: the PCI core's side of a sysfs write, on the fake tree.
set -euo pipefail
dev=$VFMIG_SYSFS/bus/pci/devices/$2
echo "${1#"$VFMIG_SYSFS"/} <- $(printf '%q' "$2")" >>"$VFMIG_SYSFS/../events"
case $1 in
*/unbind) rm "$dev/driver" ;;
*/drivers_probe)
	o=$(tr -d '\n' <"$dev/driver_override")
	if [ ! -L "$dev/driver" ]; then
		ln -s "../../drivers/${o:-edu_native}" "$dev/driver"
	fi
	;;
esac
K
chmod +x "$work/kernel"
export VFMIG_FAKE_KERNEL=$work/kernel
driver() { basename "$(readlink "$dev/driver")"; }

"$bind" "$bdf"
[ "$(driver)" = vfmig_stub ] || fail "bound to $(driver), not vfmig_stub"
[ "$(cat "$dev/driver_override")" = vfmig_stub ] || fail "driver_override not set"
cat "$work/events"
grep -q 'driver/unbind <- 0000:00:04.0' "$work/events" &&
	[ "$(cat "$VFMIG_SYSFS/bus/pci/drivers/edu_native/unbind")" = "$bdf" ] ||
	fail "the native driver was not unbound"
grep -n . "$work/events" | tr '\n' ' ' | grep '1:.*driver_override.*2:.*unbind.*3:.*drivers_probe' >/dev/null ||
	fail "not in the order override, unbind, probe"
echo "ok: native driver unbound, function probed onto vfmig_stub"

: >"$work/events"
"$bind" "$bdf" 2>&1 | grep 'already bound to vfmig_stub' >/dev/null || fail "second run not idempotent"
grep -q unbind "$work/events" && fail "a bound function was unbound again"
echo "ok: already bound: left alone"

"$bind" --unbind "$bdf"
[ "$(driver)" = edu_native ] || fail "--unbind left it on $(driver)"
echo "ok: --unbind gives the function back to its native driver"

set +e
"$bind" 0000:00:04 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q 'not a PCI address' "$work/err" || fail "bad address: exit $rc"
echo "ok: bad address refused (exit 2)"
