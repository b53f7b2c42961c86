#!/usr/bin/env bash
# sparse.sh TEST VFMIG: a sparse sim state (zero=90) between two agents.
#   sparse                  both load stream format 2: zero pages travel as
#                           ZERO records; the stream's bytes stay within
#                           1.02 x the non-zero bytes + the record headers
#   sparse_old_destination  the destination loads format 1 only (formats=1):
#                           the handshake picks format 1, which it loads
set -uo pipefail
TEST=$1
export VFMIG=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

SIZE=$((128 << 20))
PAGES=$((SIZE / 4096))

# Zero pages of sim:seed=SEED,zero=PCT: the sim's own rule (dev_sim.c,
# fill_sparse), recomputed here so the bound does not trust the agent.
zero_pages() { # SEED PCT
	python3 - "$1" "$2" "$PAGES" <<'PY'
import sys
seed, pct, pages = (int(a) for a in sys.argv[1:])
M = (1 << 64) - 1
n = 0
for p in range(pages):
    h = ((seed ^ p) * 0x9e3779b97f4a7c15) & M
    h ^= h >> 31
    h = (h * 0xbf58476d1ce4e5b9) & M
    h ^= h >> 29
    n += h % 100 < pct
print(n)
PY
}

migrate_sparse() { # DST-EXTRA
	start_recv dst "sim:size=128M,seed=41$1"
	run_send src "sim:size=128M,seed=42,zero=90" --stats-json "$T/stats.json"
	[ "$RC" = 0 ] || fail "send exited $RC"
	wait_pid "$RECV_PID" 30
	rc=$?
	[ "$rc" = 0 ] || fail "recv exited $rc"
	[ "$(field "$T/src.log" summary digest_match)" = true ] || fail "digests differ"
	sd=$(field "$T/src.log" summary state_digest)
	dd=$(field "$T/dst.log" summary state_digest)
	[ -n "$sd" ] && [ "$sd" = "$dd" ] || fail "digests differ: source $sd destination $dd"
	bytes=$(field "$T/src.log" summary bytes)
	[ -n "$bytes" ] || bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$T/stats.json")
	zero=$(zero_pages 42 90)
}

case "$TEST" in
sparse)
	migrate_sparse ""
	grep -q '"code":"stream_format_common"' "$T/src.log" || fail "no stream format rule logged"
	grep -q '"sentence":"stream format 2:' "$T/src.log" || fail "format 2 was not picked"
	nonzero=$(((PAGES - zero) * 4096))
	# every page at most one record header (runs of data pages share one),
	# plus the stream header, the register and end records
	headers=$((512 + (PAGES + 2) * 24 + 256 + 16))
	python3 - "$bytes" "$nonzero" "$headers" "$SIZE" <<'PY' || fail "stream bytes over the bound"
import sys
b, nz, h, size = (int(a) for a in sys.argv[1:])
bound = 1.02 * nz + h
print(f"stream {b} bytes, non-zero {nz}, headers <= {h}, bound {bound:.0f}, {b / size:.3f} of the state")
assert 0.07 * size < nz < 0.13 * size, nz
assert b <= bound, (b, bound)
PY
	[ $? = 0 ] || fail "bound"
	ok "sparse 128 MiB (zero=90): $bytes stream bytes for $nonzero non-zero bytes, digest $sd"
	;;
sparse_old_destination)
	migrate_sparse ",formats=1"
	grep -q '"sentence":"stream format 1:' "$T/src.log" || fail "format 1 was not picked"
	[ "$bytes" -gt "$SIZE" ] || fail "a format 1 stream of $bytes bytes is smaller than the state"
	ok "old destination (formats=1): format 1, $bytes stream bytes, accepted, digest $sd"
	;;
*)
	echo "unknown test $TEST" >&2
	exit 2
	;;
esac
