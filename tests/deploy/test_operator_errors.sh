#!/usr/bin/env bash
# Failures an operator can act on, as a unit runs the agent: --log FILE and
# stderr not a terminal (the journal). Every error line of the JSON log must
# also be on stderr, and these say their cause and fix:
# - nobody listens at --to (connect), a device that does not exist, a wrong
#   secret (each side);
# - io_uring refused by a seccomp filter (deny_io_uring, as a container
#   runtime's profile does), on the destination (EPERM) and on the source
#   (ENOSYS): the sentence names seccomp and --transport rdma.
# (The memlock sentence of RDMA registration: agent.test_xport_hints.)
#
#   test_operator_errors.sh VFMIG DENY_IO_URING
set -uo pipefail
here=$(dirname "$0")
. "$here/lib.sh"
vfmig=$1
deny=$2

t=$(mktemp -d /tmp/vfm-operr.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$t"
}
trap cleanup EXIT
fails=0
bad() {
	echo "FAIL $1"
	for f in "${@:2}"; do
		[ -f "$f" ] && { echo "  --- $f"; cut -c 1-400 "$f" | sed 's/^/    /'; }
	done
	fails=$((fails + 1))
}
ok() { echo "ok: $1"; }
# rc_is NAME RC WANT FILE: the exit status was WANT
rc_is() {
	if [ "$2" -eq "$3" ]; then ok "$1: exit $3"; else bad "$1: exit $2, expected $3" "$4"; fi
}

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$t/secret"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$t/other"
chmod 600 "$t/secret" "$t/other"
port=$((18100 + RANDOM % 400))

# errors_on_stderr NAME LOG ERR: each error message of LOG is a line of ERR
# ("vfmig send: MESSAGE[ HINT]"); at least one error is required.
errors_on_stderr() {
	local name=$1 log=$2 err=$3 n=0 msg
	while IFS= read -r msg; do
		n=$((n + 1))
		if ! grep -qF -- "$msg" "$err"; then
			bad "$name: the log's error '$msg' is not on stderr" "$log" "$err"
			return 1
		fi
	done < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o["level"] == "error" and "message" in o:
        print(o["message"])' "$log")
	if [ "$n" -eq 0 ]; then
		bad "$name: no error line with a message in the log" "$log" "$err"
		return 1
	fi
	ok "$name: $n error line(s) of the log on stderr too"
}

# has NAME FILE ERE: FILE has a line matching ERE
has() {
	if grep -Eq -- "$3" "$2"; then ok "$1: /$3/"; else bad "$1: no /$3/" "$2"; fi
}

# wait_listen LOG: until the destination's "start" line
wait_listen() {
	for _ in $(seq 1 100); do
		grep -q '"event":"start"' "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# 1. Nobody listens.
"$vfmig" send --device sim:size=4M --to "127.0.0.1:$port" --secret-file "$t/secret" \
	--log "$t/c.jsonl" --timeout-s 2 >"$t/c.out" 2>"$t/c.err"
errors_on_stderr connect "$t/c.jsonl" "$t/c.err"
has connect "$t/c.err" '^vfmig send: .*127\.0\.0\.1'

# 2. A device that does not exist (the source, then the destination).
"$vfmig" send --device vfio:0000:ff:1f.7 --to "127.0.0.1:$port" --secret-file "$t/secret" \
	--log "$t/d.jsonl" --timeout-s 2 >"$t/d.out" 2>"$t/d.err"
errors_on_stderr device-send "$t/d.jsonl" "$t/d.err"
has device-send "$t/d.err" '^vfmig send: .*0000:ff:1f\.7'
"$vfmig" recv --device vfio:0000:ff:1f.7 --listen "127.0.0.1:$port" --secret-file "$t/secret" \
	--log "$t/dd.jsonl" --timeout-s 2 >"$t/dd.out" 2>"$t/dd.err"
errors_on_stderr device-recv "$t/dd.jsonl" "$t/dd.err"

# 3. The two sides hold different secrets.
"$vfmig" recv --device sim:size=4M --listen "127.0.0.1:$port" --secret-file "$t/secret" \
	--log "$t/ar.jsonl" --timeout-s 10 --preauth-s 3 >"$t/ar.out" 2>"$t/ar.err" &
pids+=($!)
wait_listen "$t/ar.jsonl" || bad "auth: recv did not listen" "$t/ar.err"
"$vfmig" send --device sim:size=4M --to "127.0.0.1:$port" --secret-file "$t/other" \
	--log "$t/as.jsonl" --timeout-s 5 >"$t/as.out" 2>"$t/as.err"
rc=$?
rc_is auth "$rc" 6 "$t/as.err"
errors_on_stderr auth-send "$t/as.jsonl" "$t/as.err"
kill "${pids[-1]}" 2>/dev/null
wait "${pids[-1]}" 2>/dev/null

# 4. io_uring refused by seccomp: the destination (EPERM, Docker's way).
probe=$("$deny" EPERM true 2>&1)
if [ $? -eq 77 ]; then
	skip "cannot install a seccomp filter here: $probe"
fi
port=$((port + 1))
"$deny" EPERM "$vfmig" recv --device sim:size=4M --listen "127.0.0.1:$port" \
	--secret-file "$t/secret" --log "$t/sr.jsonl" --timeout-s 10 >"$t/sr.out" 2>"$t/sr.err" &
pids+=($!)
wait_listen "$t/sr.jsonl" || bad "seccomp-recv: recv did not listen" "$t/sr.err"
"$vfmig" send --device sim:size=4M --to "127.0.0.1:$port" --secret-file "$t/secret" \
	--log "$t/ss.jsonl" --timeout-s 10 >"$t/ss.out" 2>"$t/ss.err"
rc=$?
rc_is "seccomp-recv: send (4: source resumed)" "$rc" 4 "$t/ss.err"
wait "${pids[-1]}"
errors_on_stderr seccomp-recv "$t/sr.jsonl" "$t/sr.err"
has seccomp-recv "$t/sr.err" '^vfmig recv: .*io_uring is refused by a seccomp filter on this process \(io_uring_setup: Operation not permitted\).*or use --transport rdma\.$'
if python3 -c '
import json, sys
hints = [o for o in map(json.loads, open(sys.argv[1])) if "hint" in o]
sys.exit(not (hints and hints[0]["level"] == "error" and "seccomp" in hints[0]["hint"]))' \
	"$t/sr.jsonl"; then
	ok "seccomp-recv: the log line has the hint"
else
	bad "seccomp-recv: no error line with a seccomp hint" "$t/sr.jsonl"
fi

# ... and the source (ENOSYS, another runtime's way).
port=$((port + 1))
"$vfmig" recv --device sim:size=4M --listen "127.0.0.1:$port" --secret-file "$t/secret" \
	--log "$t/er.jsonl" --timeout-s 10 >"$t/er.out" 2>"$t/er.err" &
pids+=($!)
wait_listen "$t/er.jsonl" || bad "seccomp-send: recv did not listen" "$t/er.err"
"$deny" ENOSYS "$vfmig" send --device sim:size=4M --to "127.0.0.1:$port" \
	--secret-file "$t/secret" --log "$t/es.jsonl" --timeout-s 10 >"$t/es.out" 2>"$t/es.err"
rc=$?
rc_is "seccomp-send: send (4: source resumed)" "$rc" 4 "$t/es.err"
wait "${pids[-1]}"
errors_on_stderr seccomp-send "$t/es.jsonl" "$t/es.err"
has seccomp-send "$t/es.err" '^vfmig send: .*io_uring is refused by a seccomp filter on this process \(io_uring_setup: Function not implemented\).*or use --transport rdma\.$'

[ "$fails" -eq 0 ] || fail "$fails check(s) failed"
echo "ok: operator errors"
