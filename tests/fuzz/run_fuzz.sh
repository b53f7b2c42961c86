#!/usr/bin/env bash
# CTest driver for a libFuzzer target: seed a fresh corpus, fuzz for
# VFM_FUZZ_SECONDS (environment at run time, else the configured default),
# fail on any crash, leak, sanitizer report or timeout.
# Usage: run_fuzz.sh FUZZER SEEDS_TOOL GOLDEN_DIR DESC_DIR WORK_DIR DEFAULT_SECONDS
set -euo pipefail
fuzzer=$1 seeds=$2 golden=$3 desc=$4 work=$5
secs=${VFM_FUZZ_SECONDS:-$6}
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
"$seeds" "$golden" "$desc" "$work/corpus"
echo "fuzzing $(basename "$fuzzer") for ${secs}s"
set +e
"$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-max_len=70000 -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$work/corpus"
rc=$?
set -e
if ls "$work/artifacts/"* >/dev/null 2>&1; then
	echo "fuzz_proto: crash inputs in $work/artifacts" >&2
	exit 1
fi
exit "$rc"
