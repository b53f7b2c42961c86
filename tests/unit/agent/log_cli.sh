#!/usr/bin/env bash
# vfmig log: the human view of an agent's JSON log, from a file, from stdin,
# following a file that grows, and of a real agent's log.
#
#   log_cli.sh VFMIG
set -uo pipefail

vfmig=${1:?usage: log_cli.sh VFMIG}
t=$(mktemp -d /tmp/vfm-log-cli.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$t"
}
trap cleanup EXIT
passes=0 fails=0

ok() { passes=$((passes + 1)); }
bad() {
	echo "FAIL $1"
	[ -f "${2:-}" ] && sed 's/^/    /' "$2" | cut -c 1-300
	fails=$((fails + 1))
}
# rc_is NAME RC WANT OUTPUT
rc_is() {
	if [ "$2" -eq "$3" ]; then ok; else bad "$1: exit $2, expected $3" "$4"; fi
}
# has NAME FILE ERE...: every ERE matches some line of FILE
has() {
	local name=$1 f=$2 re
	shift 2
	for re in "$@"; do
		if ! grep -Eq -- "$re" "$f"; then
			bad "$name: output lacks /$re/" "$f"
			return
		fi
	done
	ok
}

mid=4c0ffee0-0000-4000-8000-000000000001
hdr() { # LEVEL ROLE EVENT
	printf '{"v":1,"ts":"2026-11-29T10:00:0%s.123456Z","level":"%s","migration_id":"%s","role":"%s","event":"%s"' \
		"$((n++ % 10))" "$1" "$mid" "$2" "$3"
}
n=0
{
	hdr info source start
	printf ',"to":"dst:7470","transport":"tcp","streams":2,"check_only":false,"device":"sim:size=1G","state":"RUNNING"}\n'
	hdr info source handshake
	# A hostile peer's descriptor: a terminal escape in its model name.
	printf ',"peer":"10.0.0.2:7470","protocol":1,"features":3,"transport":"tcp","streams":2,'
	printf '"source_descriptor":{"model":"vfmig-edu","version":"2.0.3","version_compatible":"2.0.0-2.0.9","features":[],"params":{"memory":"1024"},"allowed":{}},'
	printf '"destination_descriptor":{"model":"evil\\u001b[2J","version":"2.1.0","version_compatible":"2.1.0-","features":[],"params":{},"allowed":{}}}\n'
	hdr info source handshake_rule
	printf ',"code":"version_incompatible","code_num":4,"passed":false,"subject":"","sentence":"source version 2.0.3 is outside 2.1.0-"}\n'
	hdr warning source verdict
	printf ',"accept":false,"failed":1,"notes":[]}\n'
	hdr info source progress
	printf ',"phase":"pre-copy","bytes_sent":1048576,"remaining_bytes":1048576,"rate_mbps":12.5,"expected_downtime_ms":80.000}\n'
	hdr info source iteration
	printf ',"iteration":1,"bytes":1075838976,"ms":3878.000,"bandwidth_mbps":277.000,"initial_bytes":0,"dirty_bytes":333447168,"estimated_downtime_ms":-1.000,"decision":"continue"}\n'
	hdr info source summary
	printf ',"result":"migrated","downtime_ms":151.100,"downtime_limit_ms":300.000,"total_ms":11575.000,"bytes":1443889152,"iterations":2,"transport":"tcp","streams":2,"state_digest":"e3a3","destination_state_digest":"e3a3","digest_match":true}\n'
	hdr error source error
	printf ',"message":"Cannot connect to dst:7470: Connection refused."}\n'
	hdr info source some_future_event
	printf ',"answer":42}\n'
	hdr info source exit
	printf ',"exit_code":0}\n'
} >"$t/a.jsonl"

"$vfmig" log "$t/a.jsonl" >"$t/a.out" 2>&1
rc=$?
rc_is "file" "$rc" 0 "$t/a.out"
has file "$t/a.out" \
	'^10:00:00\.123 src migrating sim:size=1G \(RUNNING\) to dst:7470, tcp x2$' \
	'^10:00:01\.123 src handshake with 10\.0\.0\.2:7470: protocol 1, transport tcp x2$' \
	'src   source      vfmig-edu 2\.0\.3 \(compatible 2\.0\.0-2\.0\.9\) params memory=1024$' \
	'src   destination evil\?\[2J 2\.1\.0 \(compatible 2\.1\.0-\)$' \
	'src   FAIL version_incompatible: source version 2\.0\.3 is outside 2\.1\.0-$' \
	'src verdict: REFUSE \(1 failed\)$' \
	'src pre-copy iteration 1:  1026\.0 MiB in   3878 ms \(   277 MB/s\), dirty now  318\.0 MiB, est\. downtime \? -> continue$' \
	'src SUMMARY downtime 151\.1 ms \(limit 300\), total 11575 ms, 1377 MiB, 2 iterations, 2 tcp streams$' \
	'src   destination digest e3a3 \(match\)$' \
	'src error error: Cannot connect to dst:7470: Connection refused\.$' \
	'src exit code 0$'
# No control character reaches the terminal; progress and unknown events
# only with --all.
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$t/a.out"; then
	bad "file: a control character in the output" "$t/a.out"
else
	ok
fi
if grep -Eq 'pre-copy: |some_future_event' "$t/a.out"; then
	bad "file: progress or an unknown event shown without --all" "$t/a.out"
else
	ok
fi
"$vfmig" log --all "$t/a.jsonl" >"$t/all.out" 2>&1
has all "$t/all.out" \
	'src   pre-copy: 1\.0 MiB sent, 1\.0 MiB left, 12 MB/s, est\. downtime 80 ms$' \
	'src some_future_event answer=42$'

# stdin, as "-" and as no FILE: the same lines.
"$vfmig" log - <"$t/a.jsonl" >"$t/dash.out" 2>&1
"$vfmig" log <"$t/a.jsonl" >"$t/stdin.out" 2>&1
if cmp -s "$t/a.out" "$t/dash.out" && cmp -s "$t/a.out" "$t/stdin.out"; then
	ok
else
	bad "stdin: output differs from the file's" "$t/stdin.out"
fi

# A line that is not JSON: shown raw after '?', reading goes on, exit 1.
{
	head -n 1 "$t/a.jsonl"
	printf 'not json \033[31m\n'
	tail -n 1 "$t/a.jsonl"
} >"$t/b.jsonl"
"$vfmig" log "$t/b.jsonl" >"$t/b.out" 2>&1
rc=$?
rc_is "not-json" "$rc" 1 "$t/b.out"
has not-json "$t/b.out" '^\? not json \?\[31m$' 'src exit code 0$'

# Usage errors.
"$vfmig" log /nonexistent/x.jsonl >"$t/c.out" 2>&1
rc=$?
rc_is "missing file" "$rc" 2 "$t/c.out"
has missing "$t/c.out" 'cannot read /nonexistent/x\.jsonl'
"$vfmig" log --follow >"$t/c.out" 2>&1
rc=$?
rc_is "follow stdin" "$rc" 2 "$t/c.out"

# --follow: the file does not exist yet, grows line by line (one line
# written in two halves), and following ends at the "exit" line.
"$vfmig" log --follow "$t/grow.jsonl" >"$t/grow.out" 2>&1 &
fpid=$!
pids+=("$fpid")
sleep 0.3
head -n 1 "$t/a.jsonl" >"$t/grow.jsonl"
sleep 0.3
line=$(sed -n 4p "$t/a.jsonl")
printf '%s' "${line:0:40}" >>"$t/grow.jsonl"
sleep 0.3
printf '%s\n' "${line:40}" >>"$t/grow.jsonl"
sleep 0.3
tail -n 1 "$t/a.jsonl" >>"$t/grow.jsonl"
for _ in $(seq 1 50); do
	kill -0 "$fpid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$fpid" 2>/dev/null; then
	bad "follow: still running 5 s after the exit line" "$t/grow.out"
else
	wait "$fpid"
	rc=$?
	rc_is "follow" "$rc" 0 "$t/grow.out"
	has follow "$t/grow.out" 'src migrating' 'src verdict: REFUSE \(1 failed\)$' 'src exit code 0$'
	rc_is "follow: lines" "$(wc -l <"$t/grow.out")" 3 "$t/grow.out"
fi

# --follow --pid: no exit line, but the writer is gone -> stop.
head -n 3 "$t/a.jsonl" >"$t/dead.jsonl"
sleep 0.2 &
dead=$!
wait "$dead"
timeout 10 "$vfmig" log --follow --pid "$dead" "$t/dead.jsonl" >"$t/dead.out" 2>&1
rc=$?
rc_is "follow --pid" "$rc" 0 "$t/dead.out"
has follow-pid "$t/dead.out" 'src handshake with'

# A real agent's log: a refused migration of two sim devices.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$t/secret"
chmod 600 "$t/secret"
port=$((17600 + RANDOM % 300))
"$vfmig" recv --device sim:size=4M,compatible=2.1.0-2.1.9 --listen "127.0.0.1:$port" \
	--secret-file "$t/secret" --log "$t/dst.jsonl" --timeout-s 20 >"$t/dst.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	grep -q '"event":"start"' "$t/dst.jsonl" 2>/dev/null && break
	sleep 0.1
done
"$vfmig" send --device sim:size=4M --to "127.0.0.1:$port" --secret-file "$t/secret" \
	--log "$t/src.jsonl" --timeout-s 20 >"$t/src.out" 2>&1
"$vfmig" log "$t/src.jsonl" >"$t/real.out" 2>&1
has real-source "$t/real.out" '^[0-9:.]{12} src migrating sim:size=4M \(RUNNING\)' \
	'src   destination vfmig-edu 2\.0\.3 \(compatible 2\.1\.0-2\.1\.9\) params memory=4$' \
	'src   FAIL version_incompatible: source version 2\.0\.3 is outside' \
	'src verdict: REFUSE \(1 failed\)$' 'src SUMMARY refused: device RUNNING, digest [0-9a-f]{64}$' \
	'src exit code 3$'
wait
"$vfmig" log "$t/dst.jsonl" >"$t/real-dst.out" 2>&1
has real-destination "$t/real-dst.out" '^[0-9:.]{12} dst listening on 127\.0\.0\.1:' \
	'dst verdict: REFUSE \(1 failed\)$' 'dst exit code 3$'

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
