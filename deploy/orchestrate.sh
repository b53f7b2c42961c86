#!/usr/bin/env bash
# An orchestrator's side of one device migration, as a script: what libvirt,
# OpenStack or KubeVirt would do around vfmig.
#
#   deploy/orchestrate.sh --src HOST --src-device SPEC \
#                         --dst HOST --dst-device SPEC --dst-addr ADDR:PORT \
#                         [--remote CMD] [--vfmig PATH] [--workdir DIR] \
#                         [-- EXTRA SEND OPTIONS]
#
# 1. makes a migration id and a per-migration secret, and puts the secret on
#    both hosts (mode 0600, never on a command line);
# 2. pre-checks compatibility (vfmig check against a checking vfmig recv):
#    nothing changes on either host; a refusal stops here with the verdict;
# 3. runs the migration (vfmig recv on the destination, vfmig send on the
#    source) and reports both exit codes and the downtime.
#
# --remote CMD runs a command on a host as `CMD HOST 'command'` (default:
# "ssh -o BatchMode=yes"); --remote local runs everything on this host, for
# trying it out and for the tests. Exit status: vfmig send's (vfmig --help):
# 0 migrated, 3 refused (nothing changed), 4 failed and the source resumed,
# 5 device, 6 authentication, 7 outcome unknown (both devices stopped:
# fence the destination before resuming either), 8 the source could not be
# resumed, 1 internal, 2 usage.
set -euo pipefail

src="" dst="" src_dev="" dst_dev="" dst_addr=""
remote="ssh -o BatchMode=yes" vfmig=vfmig workdir=/run/vfmig
while [ $# -gt 0 ]; do
	case "$1" in
	--src) src=$2; shift 2 ;;
	--dst) dst=$2; shift 2 ;;
	--src-device) src_dev=$2; shift 2 ;;
	--dst-device) dst_dev=$2; shift 2 ;;
	--dst-addr) dst_addr=$2; shift 2 ;;
	--remote) remote=$2; shift 2 ;;
	--vfmig) vfmig=$2; shift 2 ;;
	--workdir) workdir=$2; shift 2 ;;
	-h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	--) shift; break ;;
	*) echo "orchestrate: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
done
for v in src dst src_dev dst_dev dst_addr; do
	if [ -z "${!v}" ]; then
		echo "orchestrate: --${v//_/-} is required (see --help)" >&2
		exit 2
	fi
done

on() { # HOST COMMAND
	if [ "$remote" = local ]; then
		bash -c "$2"
	else
		$remote "$1" "$2"
	fi
}
say() { printf 'orchestrate: %s\n' "$*" >&2; }
q() { printf '%q' "$1"; }

id=$(cat /proc/sys/kernel/random/uuid)
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
d="$workdir/$id"
for h in "$src" "$dst"; do
	on "$h" "umask 077 && mkdir -p $(q "$d") && cat > $(q "$d/secret")" <<<"$secret"
done
say "migration $id: $src ($src_dev) -> $dst ($dst_dev at $dst_addr)"

recv_bg() { # STATS -> runs vfmig recv on the destination in the background
	on "$dst" "$(q "$vfmig") recv --device $(q "$dst_dev") --listen $(q "$dst_addr") \
		--secret-file $(q "$d/secret") --migration-id $id --wait-s 60 \
		--log $(q "$d/recv-$1.jsonl") --stats-json $(q "$d/recv-$1.json")" &
	recv_pid=$!
	# vfmig send/check wait for the destination to listen (--timeout-s).
}

# 2. Pre-check. The destination decides; nothing changes on either side.
recv_bg check
set +e
on "$src" "$(q "$vfmig") check --device $(q "$src_dev") --to $(q "$dst_addr") \
	--secret-file $(q "$d/secret") --migration-id $id --log $(q "$d/check.jsonl")"
rc=$?
wait "$recv_pid"
set -e
if [ "$rc" -ne 0 ]; then
	# Every failed rule, as the destination stated it (vfmig log reads
	# the JSON log: "... src   FAIL code [subject]: sentence").
	on "$src" "$(q "$vfmig") log $(q "$d/check.jsonl")" 2>/dev/null |
		sed -n 's/^.* FAIL \(.*\)$/orchestrate:   refused: \1/p' >&2 || true
	say "pre-check failed (exit $rc): not migrating; both devices untouched"
	exit "$rc"
fi
say "pre-check: compatible"

# 3. The migration.
recv_bg migrate
set +e
on "$src" "$(q "$vfmig") send --device $(q "$src_dev") --to $(q "$dst_addr") \
	--secret-file $(q "$d/secret") --migration-id $id \
	--log $(q "$d/send.jsonl") --stats-json $(q "$d/send.json") $(printf '%q ' "$@")"
rc=$?
if [ "$rc" -eq 7 ]; then
	# Outcome unknown: the source stays stopped. Ask the destination
	# agent (it lingers to answer) and resume the source only if it
	# says it aborted and will never run this state.
	say "outcome unknown: asking the destination (vfmig outcome)"
	on "$src" "$(q "$vfmig") outcome --device $(q "$src_dev") --to $(q "$dst_addr") \
		--secret-file $(q "$d/secret") --migration-id $id --resume \
		--log $(q "$d/outcome.jsonl")"
	orc=$?
	case $orc in
	0) say "settled: the destination runs the migrated state; the source stays stopped"; rc=0 ;;
	4) say "settled: the destination aborted; the source device was resumed"; rc=4 ;;
	esac
fi
wait "$recv_pid"
rrc=$?
set -e
say "send exited $rc, recv exited $rrc; logs in $d on both hosts"
case $rc in
4) say "the migration failed; the source device was resumed and runs" ;;
7) say "outcome unknown and the destination did not answer: both devices are stopped; fence the destination (recv exit $rrc: 0 means it ran) before resuming either side" ;;
8) say "the source device could not be resumed and the destination did not run: reset the source device" ;;
esac
if [ "$rc" -eq 0 ]; then
	on "$src" "grep -o '\"downtime_ms\":[0-9.]*' $(q "$d/send.json")" | sed 's/^/orchestrate: /' >&2 || true
fi
exit "$rc"
