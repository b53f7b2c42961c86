#!/bin/bash
# The vfmig agent in the guest: vfio -> vfio between the two edu devices
# bound to vfmig_stub.ko, over TCP on loopback, with the source's workload
# dirtying memory during pre-copy; then a migration the destination refuses.
# vfm-timeout: 900
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

bin=$VFM_BUILD/bin/vfmig
if [ ! -x "$bin" ]; then
	echo "skip agent-tcp - vfmig not built in $VFM_BUILD"
	exit 77
fi
if [ "$VFM_HAVE_STUB" != 1 ]; then
	echo "skip agent-tcp - ${VFM_STUB_REASON:-vfmig_stub.ko not loaded}"
	exit 77
fi

A=$VFM_EDU_A
B=$VFM_EDU_B
knob() { echo "/sys/bus/pci/devices/$1/vfmig/$2"; }
mig() { echo "/sys/bus/pci/devices/$1/migration/$2"; }
work=$(mktemp -d /tmp/agent-tcp.XXXXXX)
head -c 48 /dev/urandom | base64 -w0 >"$work/secret"
chmod 600 "$work/secret"
rate_a=$(cat "$(knob "$A" dirty_rate)")
rate_b=$(cat "$(knob "$B" dirty_rate)")
compat_b=$(cat "$(mig "$B" version_compatible)")
restore() {
	echo "$rate_a" >"$(knob "$A" dirty_rate)"
	echo "$rate_b" >"$(knob "$B" dirty_rate)"
	echo "$compat_b" >"$(mig "$B" version_compatible)"
	cp "$work"/*.log "$VFM_OUT/" 2>/dev/null
	rm -rf "$work"
}
trap restore EXIT

# field LOG EVENT KEY
field() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, sys
val = ""
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o.get("event") == sys.argv[2] and sys.argv[3] in o:
        val = str(o[sys.argv[3]]).lower() if isinstance(o[sys.argv[3]], bool) else str(o[sys.argv[3]])
print(val)
PY
}

# 0. describe and check through vfio: nothing moves
if "$bin" describe "vfio:$A" >"$work/describe.out" 2>&1 && grep -q 'model: *vfmig-edu' "$work/describe.out"; then
	vfm_ok describe/vfio
else
	vfm_not_ok describe/vfio "$(head -c 300 "$work/describe.out")"
fi
"$bin" recv --device "vfio:$B" --listen 127.0.0.1:7599 --secret-file "$work/secret" \
	--log "$work/agent-check-dst.log" --timeout-s 60 --wait-s 60 >/dev/null 2>&1 &
rpid=$!
sleep 1
timeout 120 "$bin" check --device "vfio:$A" --to 127.0.0.1:7599 --secret-file "$work/secret" \
	--log "$work/agent-check-src.log" --timeout-s 60 >/dev/null 2>&1
src_rc=$?
wait "$rpid"
dst_rc=$?
vfm_check check/exit-codes test "$src_rc-$dst_rc" = "0-0"
vfm_check check/source-running test "$(cat "$(knob "$A" mig_state)")" = RUNNING

# 1. A (workload on) -> B (workload off, so its digest stays put once running)
echo 2000000 >"$(knob "$A" dirty_rate)"
echo 0 >"$(knob "$B" dirty_rate)"
"$bin" recv --device "vfio:$B" --listen 127.0.0.1:7600 --secret-file "$work/secret" \
	--log "$work/agent-dst.log" --timeout-s 120 --wait-s 120 >"$work/dst.out" 2>&1 &
rpid=$!
sleep 1
timeout 600 "$bin" send --device "vfio:$A" --to 127.0.0.1:7600 --secret-file "$work/secret" \
	--log "$work/agent-src.log" --timeout-s 120 --streams 2 >"$work/src.out" 2>&1
src_rc=$?
wait "$rpid"
dst_rc=$?
cat "$work/src.out" "$work/dst.out"
if [ "$src_rc" = 0 ] && [ "$dst_rc" = 0 ]; then
	vfm_ok migrate/exit-codes
else
	vfm_not_ok migrate/exit-codes "send $src_rc recv $dst_rc: $(tail -n 3 "$work/agent-src.log" "$work/agent-dst.log" | tr '\n' ' ')"
fi
sd=$(field "$work/agent-src.log" summary state_digest)
dd=$(field "$work/agent-dst.log" summary state_digest)
if [ -n "$sd" ] && [ "$sd" = "$dd" ]; then
	vfm_ok migrate/digest-equal
else
	vfm_not_ok migrate/digest-equal "source '$sd' destination '$dd'"
fi
# (The driver clears a device's state when its last user closes it, so
# sysfs has nothing to compare once the agents have exited: the digests
# above were taken while each agent held its device, the destination's
# while it was stopped, before it ran.)
vfm_check migrate/verified-before-running test "$(field "$work/agent-src.log" summary verified)" = true
dirty=$(field "$work/agent-src.log" iteration dirty_bytes)
vfm_check migrate/workload-dirtied-during-precopy test -n "$dirty"
grep -q '"event":"iteration"' "$work/agent-src.log" && vfm_ok migrate/iterations-logged ||
	vfm_not_ok migrate/iterations-logged "no iteration lines"
vfm_measure agent-tcp/downtime "$(field "$work/agent-src.log" summary downtime_ms)" ms
vfm_measure agent-tcp/total "$(field "$work/agent-src.log" summary total_ms)" ms
vfm_measure agent-tcp/bandwidth "$(field "$work/agent-src.log" summary bandwidth_mbps)" MB/s

# 1b. the same with --encrypt: the data plane sealed with AES-256-GCM, the
# destination requiring it; both digests equal.
"$bin" recv --device "vfio:$B" --listen 127.0.0.1:7602 --secret-file "$work/secret" --encrypt \
	--log "$work/agent-dst-enc.log" --timeout-s 120 --wait-s 120 >"$work/dst-enc.out" 2>&1 &
rpid=$!
sleep 1
timeout 600 "$bin" send --device "vfio:$A" --to 127.0.0.1:7602 --secret-file "$work/secret" --encrypt \
	--log "$work/agent-src-enc.log" --timeout-s 120 --streams 2 >"$work/src-enc.out" 2>&1
src_rc=$?
wait "$rpid"
dst_rc=$?
vfm_check encrypt/exit-codes test "$src_rc-$dst_rc" = "0-0"
vfm_check encrypt/sealed test "$(field "$work/agent-src-enc.log" summary cipher)-$(field "$work/agent-dst-enc.log" summary cipher)" = "aes-256-gcm-aes-256-gcm"
sd=$(field "$work/agent-src-enc.log" summary state_digest)
dd=$(field "$work/agent-dst-enc.log" summary state_digest)
vfm_check encrypt/digest-equal test -n "$sd" -a "$sd" = "$dd"
vfm_measure agent-tcp-encrypt/downtime "$(field "$work/agent-src-enc.log" summary downtime_ms)" ms

# 2. refused: B accepts only 2.1.x; A (workload off) must not change.
echo 0 >"$(knob "$A" dirty_rate)"
echo "2.1.0-2.1.9" >"$(mig "$B" version_compatible)"
"$bin" recv --device "vfio:$B" --listen 127.0.0.1:7601 --secret-file "$work/secret" \
	--log "$work/agent-dst2.log" --timeout-s 60 --wait-s 60 >"$work/dst2.out" 2>&1 &
rpid=$!
sleep 1
timeout 120 "$bin" send --device "vfio:$A" --to 127.0.0.1:7601 --secret-file "$work/secret" \
	--log "$work/agent-src2.log" --timeout-s 60 >"$work/src2.out" 2>&1
src_rc=$?
wait "$rpid"
dst_rc=$?
cat "$work/src2.out" "$work/dst2.out"
vfm_check refused/exit-codes test "$src_rc-$dst_rc" = "3-3"
vfm_check refused/source-running test "$(field "$work/agent-src2.log" summary state)" = RUNNING
before=$(field "$work/agent-src2.log" start state_digest)
after=$(field "$work/agent-src2.log" summary state_digest)
vfm_check refused/source-digest-unchanged test -n "$before" -a "$before" = "$after"
grep -q '"code":"version_incompatible"' "$work/agent-src2.log" && vfm_ok refused/reason-logged ||
	vfm_not_ok refused/reason-logged "no version_incompatible rule in the log"
exit 0
