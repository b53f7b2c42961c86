#!/usr/bin/env bash
# Smoke run of vfmig-bench (tiny matrix: 64M, dirty 0 and 50M, 1-2 streams,
# 1 rep) and checks that its outputs exist and are well-formed. No speed is
# asserted.   smoke.sh VFMIG_BENCH OUT_DIR
set -euo pipefail

BENCH=${1:?usage: smoke.sh VFMIG_BENCH OUT_DIR}
OUT=${2:?usage: smoke.sh VFMIG_BENCH OUT_DIR}

for tool in gnuplot iperf3 python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool is not installed (scripts/setup.sh installs it)."
		exit 77
	fi
done

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

rm -rf "$OUT"
mkdir -p "$OUT"
set +e
timeout 240 "$BENCH" --quick --timeout-s 20 --out "$OUT" >"$OUT/stdout.txt" 2>"$OUT/stderr.txt"
rc=$?
set -e
cat "$OUT/stdout.txt"
[ "$rc" -eq 0 ] || { tail -n 20 "$OUT/stderr.txt" >&2; fail "vfmig-bench exited $rc"; }

# The progress lines and the table.
grep -q '^\[  4/4\]' "$OUT/stderr.txt" || fail "no progress line for the 4th run"
grep -q '^targets:' "$OUT/stdout.txt" || fail "no targets section in the table"

# results.json parses and holds 4 migrated runs with a downtime each.
python3 - "$OUT/results.json" <<'PY' || fail "results.json is not well-formed"
import json, sys
o = json.load(open(sys.argv[1]))
runs = o["runs"]
assert len(runs) == 4, f"{len(runs)} runs"
for r in runs:
    assert r["ok"], r["why"]
    assert r["downtime_ms"] is not None and r["downtime_ms"] > 0, r
    for k in ("stop_ms", "final_transfer_ms", "resume_ms", "commit_ms", "overhead_ms",
              "precopy_Bps", "src_peak_rss_kb", "dst_peak_rss_kb"):
        assert k in r, k
assert o["peers"]["memcpy_Bps"] > 0
assert any(p["Bps"] > 0 for p in o["peers"]["iperf3"]), "no iperf3 result"
assert "targets" in o and "overhead_ms_p50" in o["targets"]
assert len(o["groups"]) == 4
PY

# results.csv: the header and one row per run.
head -n 1 "$OUT/results.csv" | grep -q '^transport,datapath,size,dirty_Bps,streams,rep,ok,downtime_ms,' ||
	fail "results.csv has no header"
rows=$(tail -n +2 "$OUT/results.csv" | grep -c '^tcp,mmap,67108864,' || true)
[ "$rows" -eq 4 ] || fail "results.csv has $rows rows, not 4"

# The plots are PNG files.
for png in downtime_vs_dirty throughput_vs_streams downtime_split; do
	f="$OUT/$png.png"
	[ -s "$f" ] || fail "$f is missing"
	[ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
		fail "$f is not a PNG"
done
echo "PASS: vfmig-bench smoke run; outputs in $OUT"
