#!/usr/bin/env bash
# CTest driver for a libFuzzer target: seed a fresh corpus, fuzz for
# VFM_FUZZ_SECONDS (environment at run time, else the configured default),
# fail on any crash, leak, sanitizer report or timeout.
# Usage: run_fuzz.sh FUZZER SEEDS_TOOL GOLDEN_DIR DESC_DIR WORK_DIR DEFAULT_SECONDS
#        run_fuzz.sh FUZZER - CORPUS_DIR - WORK_DIR DEFAULT_SECONDS
# (the second form starts from a corpus kept in the repository; with
# VFM_FUZZ_MERGE=1 the new inputs are merged back into it)
set -euo pipefail
fuzzer=$1 seeds=$2 golden=$3 desc=$4 work=$5
secs=${VFM_FUZZ_SECONDS:-$6}
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
if [ "$seeds" = - ]; then
	cp -r "$golden"/. "$work/corpus/" 2>/dev/null || true
else
	"$seeds" "$golden" "$desc" "$work/corpus"
fi
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
if [ "$seeds" = - ] && [ "${VFM_FUZZ_MERGE:-0}" = 1 ] && [ "$rc" = 0 ]; then
	"$fuzzer" -merge=1 "$golden" "$work/corpus" >/dev/null 2>&1 || true
fi
exit "$rc"
