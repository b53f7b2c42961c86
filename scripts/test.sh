#!/usr/bin/env bash
# Run every vfmig test: install what is missing, configure, build, test.
#
#  1. gcc, -Werror: unit (cmocka), integration (real vfmig processes on
#     loopback), bench smoke, and the guest-kernel tests (tests/vm: the
#     module and soft-RoCE in a TCG guest).
#  2. clang, ASan+UBSan, -Werror: unit and integration again, and the
#     libFuzzer targets for a bounded time.
#
# Environment: VFM_SKIP_VM=1 leaves out the guest tests (they then SKIP),
# VFM_JOBS=N sets build parallelism, VFM_FUZZ_SECONDS=S the fuzzing time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${VFM_JOBS:-$(nproc)}
logdir=$root/build/test-logs
mkdir -p "$logdir"
: >"$logdir/ctest.log"

say() { printf '\n=== %s\n' "$*"; }

if [ "${VFM_SKIP_VM:-0}" = 1 ]; then
	bash scripts/setup.sh
else
	bash scripts/setup.sh --vm
fi

run_ctest() { # build-dir label-args...
	local dir=$1
	shift
	(cd "$dir" && ctest --output-on-failure --timeout 1800 "$@") 2>&1 | tee -a "$logdir/ctest.log"
	return "${PIPESTATUS[0]}"
}

rc=0

say "build 1/2: gcc, -Werror"
cmake -S . -B build/gcc -DVFM_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/gcc -j "$jobs"
say "tests 1/2: unit"
run_ctest build/gcc -j "$jobs" -L unit || rc=1
say "tests 1/2: integration, bench smoke, guest kernel"
vmres=build/gcc/vm-results/last
rm -f "$vmres" # never report an earlier run's guest results
run_ctest build/gcc -LE 'unit|fuzz' || rc=1
if [ -f "$vmres/summary" ]; then
	say "guest-kernel run: $(tr '\n' ' ' <"$vmres/summary")(boot $(cat "$vmres/boot-uptime" 2>/dev/null || echo '?') s); measurements:"
	sed 's/^/  /' "$vmres/measurements" 2>/dev/null || true
	grep -E '^not ok' "$vmres/results.tap" 2>/dev/null | sed 's/^/  /' || true
fi

say "build 2/2: clang, ASan+UBSan, libFuzzer"
CC=clang cmake -S . -B build/asan -DVFM_WERROR=ON -DVFM_SANITIZE=ON -DVFM_FUZZ=ON \
	-DVFM_KERNEL=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build/asan -j "$jobs"
say "tests 2/2: unit, integration and fuzzing under sanitizers"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
run_ctest build/asan -j "$jobs" -L 'unit|fuzz' || rc=1
# Real processes with timeouts: one at a time, as in stage 1. The pinned
# dirtying migrations ran 20 times per stream count in stage 1; here 5.
VFM_PINNED_REPS=5 run_ctest build/asan -L integration || rc=1

# The guest run counts check by check (its results.tap), not as the one
# CTest entry "vm"; when it wrote no results, the entry itself counts.
tests=$(grep -E '^ *[0-9]+/[0-9]+ Test +#[0-9]+: ' "$logdir/ctest.log" || true)
vm_tap=
if [ -f "$vmres/results.tap" ]; then
	vm_tap=$vmres/results.tap
	# a guest that crashed or timed out may leave no "not ok": keep the
	# entry then
	if ! grep -E 'Test +#[0-9]+: vm .*\*\*\*(Failed|Exception|Timeout)' <<<"$tests" >/dev/null ||
		grep -q '^not ok ' "$vm_tap"; then
		tests=$(grep -vE 'Test +#[0-9]+: vm ' <<<"$tests" || true)
	fi
fi
passed=$(grep -cE ' Passed' <<<"$tests" || true)
failed=$(grep -cE '\*\*\*(Failed|Exception|Timeout)|Not Run' <<<"$tests" || true)
skipped=$(grep -cE '\*\*\*Skipped' <<<"$tests" || true)
if [ -n "$vm_tap" ]; then
	passed=$((passed + $(grep -c '^ok ' "$vm_tap" || true)))
	failed=$((failed + $(grep -c '^not ok ' "$vm_tap" || true)))
	skipped=$((skipped + $(grep -c '^skip ' "$vm_tap" || true)))
fi
echo
echo "vfmig tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || rc=1
exit "$rc"
