#!/usr/bin/env bash
# deploy/orchestrate.sh on one host: a compatible pair migrates (exit 0, the
# downtime reported, both sides' logs written); an incompatible pair stops at
# the pre-check (exit 3) and no migration is attempted.
set -euo pipefail
vfmig=$1 orch=$2
work=$(mktemp -d /tmp/vfmig-orch.XXXXXX)
trap 'rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
fail() { echo "FAIL: $*" >&2; exit 1; }

set +e
bash "$orch" --remote local --vfmig "$vfmig" --workdir "$work" \
	--src here --src-device sim:size=32M,dirty=10M \
	--dst here --dst-device sim:size=32M --dst-addr "127.0.0.1:$port" \
	-- --streams 2 >"$work/ok.out" 2>&1
rc=$?
set -e
cat "$work/ok.out"
[ "$rc" -eq 0 ] || fail "compatible migration exited $rc"
grep -q 'pre-check: compatible' "$work/ok.out" || fail "no pre-check line"
grep -q '"downtime_ms":' "$work/ok.out" || fail "no downtime reported"
n=$(find "$work" -name 'send.jsonl' | wc -l)
[ "$n" -eq 1 ] || fail "expected one send log, found $n"
echo "ok: compatible pair migrated"

port=$((port + 1))
set +e
bash "$orch" --remote local --vfmig "$vfmig" --workdir "$work" \
	--src here --src-device sim:size=32M,version=2.0.3 \
	--dst here --dst-device sim:size=32M,compatible=2.1.0- --dst-addr "127.0.0.1:$port" \
	>"$work/refused.out" 2>&1
rc=$?
set -e
cat "$work/refused.out"
[ "$rc" -eq 3 ] || fail "incompatible pair exited $rc, expected 3"
grep -q 'pre-check failed (exit 3)' "$work/refused.out" || fail "no pre-check refusal line"
grep -q 'version' "$work/refused.out" || fail "the refusal does not name the version rule"
[ "$(find "$work" -name 'send.jsonl' | wc -l)" -eq 1 ] || fail "a migration was attempted after a refused pre-check"
echo "ok: incompatible pair refused at the pre-check"
