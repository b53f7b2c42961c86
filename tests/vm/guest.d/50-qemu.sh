#!/bin/bash
# A stock VMM drives vfmig_stub: QEMU 10 (bookworm-backports, unpacked by
# scripts/setup.sh --vm into $VFM_QEMU10_PREFIX, default /opt/vfmig/qemu10)
# migrates a tiny nested VM holding edu A (vfio-pci, enable-migration=on)
# into a second nested VM holding edu B, over a unix socket:
#   a) A's workload dirtying, switchover-ack on: pre-copy sees dirty pages,
#      digests equal, the destination runs
#   b) B's version_compatible excludes A's version: the migration fails, the
#      source VM keeps running, A's digest unchanged
#   c) QEMU's downtime and "vfio device transferred" next to vfmig's agent
#      moving the same device state (# measure lines)
# Both devices get 16 MiB of device memory here (restored afterwards).
# vfm-timeout: 1200
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

prefix=${VFM_QEMU10_PREFIX:-/opt/vfmig/qemu10}
Q=$prefix/usr/bin/qemu-system-x86_64
# skip_all WHY: what the machine lacks. With CI=true, a missing piece that
# scripts/setup.sh installs is a failure.
skip_all() {
	if [ "${CI:-}" = true ]; then
		vfm_not_ok qemu/setup "$1 (CI=true: scripts/setup.sh --vm provides it)"
		exit 1
	fi
	echo "skip qemu - $1"
	exit 77
}
[ -x "$Q" ] || skip_all "QEMU 10 not found at $Q (run scripts/setup.sh --vm)"
[ "$VFM_HAVE_STUB" = 1 ] || skip_all "${VFM_STUB_REASON:-vfmig_stub.ko not loaded}"
command -v python3 >/dev/null || skip_all "python3 missing"

A=$VFM_EDU_A
B=$VFM_EDU_B
knob() { echo "/sys/bus/pci/devices/$1/vfmig/$2"; }
mig() { echo "/sys/bus/pci/devices/$1/migration/$2"; }
work=$(mktemp -d /tmp/qemu10.XXXXXX)
mem_a=$(cat "$(mig "$A" params/memory)")
mem_b=$(cat "$(mig "$B" params/memory)")
allowed_b=$(cat "$(mig "$B" allowed/memory)")
rate_a=$(cat "$(knob "$A" dirty_rate)")
rate_b=$(cat "$(knob "$B" dirty_rate)")
compat_b=$(cat "$(mig "$B" version_compatible)")
pids=()
stop_vms() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do timeout 20 tail --pid="$p" -f /dev/null; done
	pids=()
}
restore() {
	stop_vms
	echo "$rate_a" >"$(knob "$A" dirty_rate)"
	echo "$rate_b" >"$(knob "$B" dirty_rate)"
	echo "$mem_a" >"$(mig "$A" params/memory)"
	echo "$mem_b" >"$(mig "$B" params/memory)"
	echo "$compat_b" >"$(mig "$B" version_compatible)"
	echo "$allowed_b" >"$(mig "$B" allowed/memory)"
	cp "$work"/*.log "$VFM_OUT/" 2>/dev/null
	rm -rf "$work"
}
trap restore EXIT

ulimit -l unlimited
echo 16 >"$(mig "$A" params/memory)"
echo 16 >"$(mig "$B" params/memory)"
echo 16 >"$(mig "$B" allowed/memory)"
echo 0 >"$(knob "$B" dirty_rate)"
"$Q" --version | head -n1 | sed 's/^/# /'

# hmp NAME CMD...: run HMP commands on VM NAME's monitor, print the output.
hmp() {
	python3 - "$work/$1.mon" "${@:2}" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect(sys.argv[1])
def until_prompt():
    buf = b""
    while not buf.endswith(b"(qemu) "):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return buf.decode(errors="replace")
until_prompt()
for cmd in sys.argv[2:]:
    s.sendall(cmd.encode() + b"\n")
    out = until_prompt()
    # drop the echoed command line and the prompt
    print("\n".join(l for l in out.replace("\r", "").split("\n")[1:] if not l.startswith("(qemu)")))
PY
}

# vm NAME BDF [ARGS...]: a tiny nested VM holding BDF, monitor on a socket.
vm() {
	local name=$1 bdf=$2
	shift 2
	"$Q" -L "$prefix/usr/share/qemu" -L /usr/share/seabios -accel tcg \
		-machine q35 -m 32 -nodefaults -display none -serial none \
		-device "vfio-pci,host=$bdf,enable-migration=on" \
		-monitor "unix:$work/$name.mon,server=on,wait=off" "$@" \
		>"$work/$name.log" 2>&1 &
	pids+=($!)
	local _
	for _ in $(seq 1 100); do
		[ -S "$work/$name.mon" ] && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.2
	done
	echo "# vm $name did not start: $(tail -n 5 "$work/$name.log" | tr '\n' ' ')"
	return 1
}

# migrate SRC DST LIMIT_S: start the migration, poll until it ends; sets
# $status, and while it runs, the largest dirty page count A's stats show
# in PRE_COPY in $max_dirty.
migrate() {
	local src=$1 dst=$2 limit=$3 t0 st d
	hmp "$dst" "migrate_set_capability return-path on" \
		"migrate_set_capability switchover-ack on" \
		"migrate_incoming unix:$work/mig.sock" >/dev/null
	hmp "$src" "migrate_set_capability return-path on" \
		"migrate_set_capability switchover-ack on" \
		"migrate_set_parameter downtime-limit 20000" \
		"migrate -d unix:$work/mig.sock" >"$work/migrate.out"
	t0=$(date +%s)
	max_dirty=0
	status=
	while [ $(($(date +%s) - t0)) -lt "$limit" ]; do
		st=$(cat "$(knob "$A" mig_state)")
		if [ "$st" = PRE_COPY ]; then
			d=$(awk '$1 == "dirty_pages" { print $2 }' "$(knob "$A" stats)")
			[ "${d:-0}" -gt "$max_dirty" ] && max_dirty=$d
		fi
		# "failed (Sibling indicated error 1)": the first word
		status=$(hmp "$src" "info migrate" 2>/dev/null | tee "$work/info-$src.out" |
			sed -n 's/^Migration status: *\([a-z-]*\).*/\1/p' | head -n1)
		case $status in
		completed | failed | cancelled) break ;;
		esac
		[ $((($(date +%s) - t0) % 30)) -eq 0 ] &&
			echo "# migrate $src -> $dst: '$status', A $st, after $(($(date +%s) - t0)) s"
		sleep 1
	done
	echo "# migrate $src -> $dst: status '$status' after $(($(date +%s) - t0)) s"
	sed 's/^/# /' "$work/info-$src.out"
}

# a) A (workload on) -> B: pre-copy iterates, switchover-ack, digests equal
echo 4000000 >"$(knob "$A" dirty_rate)"
if vm src "$A" && vm dst "$B" -incoming defer; then
	migrate src dst 900
	if [ "$status" = completed ]; then
		vfm_ok migrate/completed
	else
		vfm_not_ok migrate/completed "status '$status': $(tail -n 3 "$work/src.log" "$work/dst.log" | tr '\n' ' ')"
	fi
	vfm_check migrate/precopy-dirty test "$max_dirty" -gt 0
	echo "# A's dirty pages seen in PRE_COPY: up to $max_dirty"
	sa=$(cat "$(knob "$A" mig_state)")
	sb=$(cat "$(knob "$B" mig_state)")
	da=$(cat "$(mig "$A" state_digest)")
	db=$(cat "$(mig "$B" state_digest)")
	vm_status=$(hmp dst "info status" | sed -n 's/^VM status: *//p')
	vfm_check migrate/source-stopped test "$sa" = STOP
	vfm_check migrate/destination-running test "$sb-$vm_status" = "RUNNING-running"
	if [ -n "$da" ] && [ "$da" = "$db" ]; then
		vfm_ok migrate/digest-equal
	else
		vfm_not_ok migrate/digest-equal "A $da B $db"
	fi
	xfer=$(sed -n 's/^vfio device transferred: *\([0-9]*\) kbytes.*/\1/p' "$work/info-src.out")
	down=$(sed -n 's/^downtime: *\([0-9]*\) ms.*/\1/p' "$work/info-src.out")
	total=$(sed -n 's/^total time: *\([0-9]*\) ms.*/\1/p' "$work/info-src.out")
	vfm_check migrate/vfio-transferred test "${xfer:-0}" -gt 16384
	[ -n "$down" ] && vfm_measure qemu/downtime "$down" ms
	[ -n "$xfer" ] && vfm_measure qemu/vfio-transferred "$xfer" kB
	[ -n "$total" ] && vfm_measure qemu/total "$total" ms
else
	vfm_not_ok migrate/completed "a nested VM did not start"
fi
stop_vms
echo 0 >"$(knob "$A" dirty_rate)"
rm -f "$work"/*.mon "$work/mig.sock"

# b) B refuses A's version: the migration fails, A runs on, unchanged
echo "2.1.0-2.1.9" >"$(mig "$B" version_compatible)"
if vm src "$A" && vm dst "$B" -incoming defer; then
	# The nested firmware may still touch the function right after start,
	# and the workload may finish a tick: take the digest once it holds
	# still for a second.
	before=$(cat "$(mig "$A" state_digest)")
	for _ in $(seq 1 20); do
		sleep 1
		now=$(cat "$(mig "$A" state_digest)")
		[ "$now" = "$before" ] && break
		before=$now
	done
	migrate src dst 600
	vfm_check refused/migration-failed test "$status" = failed
	vm_status=$(hmp src "info status" | sed -n 's/^VM status: *//p')
	vfm_check refused/source-vm-running test "$vm_status" = running
	vfm_check refused/source-device-running test "$(cat "$(knob "$A" mig_state)")" = RUNNING
	vfm_check refused/source-digest-unchanged test "$before" = "$(cat "$(mig "$A" state_digest)")"
	if grep -q 'migration stream refused' <(dmesg | tail -n 50); then
		vfm_ok refused/driver-said-why
	else
		vfm_not_ok refused/driver-said-why "no refusal in dmesg"
	fi
else
	vfm_not_ok refused/migration-failed "a nested VM did not start"
fi
stop_vms
echo "$compat_b" >"$(mig "$B" version_compatible)"

# c) vfmig's agent moves the same device state (16 MiB, workload on) in
# this boot: its downtime next to QEMU's.
bin=$VFM_BUILD/bin/vfmig
if [ -x "$bin" ]; then
	ip link set lo up 2>/dev/null
	head -c 48 /dev/urandom | base64 -w0 >"$work/secret"
	chmod 600 "$work/secret"
	echo 4000000 >"$(knob "$A" dirty_rate)"
	"$bin" recv --device "vfio:$B" --listen 127.0.0.1:7650 --secret-file "$work/secret" \
		--log "$work/agent-dst.log" --timeout-s 120 --wait-s 120 >/dev/null 2>&1 &
	rpid=$!
	sleep 1
	timeout 300 "$bin" send --device "vfio:$A" --to 127.0.0.1:7650 --secret-file "$work/secret" \
		--log "$work/agent-src.log" --timeout-s 120 >/dev/null 2>&1
	src_rc=$?
	wait "$rpid"
	echo 0 >"$(knob "$A" dirty_rate)"
	if [ "$src_rc" = 0 ]; then
		# downtime_ms total_ms bytes of the agent's summary
		read -r adown atotal abytes < <(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o.get("event") == "summary":
        print(o.get("downtime_ms", ""), o.get("total_ms", ""), o.get("bytes", ""))' "$work/agent-src.log")
		vfm_measure qemu/vfmig-agent-downtime "$adown" ms
		vfm_measure qemu/vfmig-agent-total "$atotal" ms
		[ -n "$abytes" ] && vfm_measure qemu/vfmig-agent-transferred "$((abytes / 1024))" kB
		vfm_ok agent-same-state/migrated
	else
		vfm_not_ok agent-same-state/migrated "vfmig send exited $src_rc: $(tail -n 2 "$work/agent-src.log" | tr '\n' ' ')"
	fi
else
	echo "# vfmig not built: no agent comparison"
fi
exit 0
