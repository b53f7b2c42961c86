#!/bin/bash
# The guest test driver: prepares the guest (guest-lib.sh), then runs every
# suite tests/vm/guest.d/NN-name.sh in name order and collects their result
# lines (README.md, "Writing a guest suite"):
#
#   ok NAME | not ok NAME - reason | skip NAME - reason | # measure NAME VALUE UNIT
#
# Writes to the results export ($VFM_OUT): results.tap (every result line,
# NAME prefixed with the suite's name), measurements, suites/<suite>.log,
# and summary ("passed N", "failed N", "skipped N"). Exits 1 on any failure.
#
# VFM_SUITES: space-separated shell patterns of suite names to run
# (default: all). VFM_SUITE_TIMEOUT: seconds per suite (default 600; a
# suite may ask for more with a "# vfm-timeout: S" line).
set -u
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

echo "vfm-driver: preparing the guest"
vfm_prepare 2>&1 | tee "$VFM_OUT/prepare.log" >&2
# vfm_prepare ran in a pipeline's subshell: reload its results.
# shellcheck source=/dev/null
. /run/vfm-env
echo "vfm-driver: $(vfm_env_summary)"

mkdir -p "$VFM_OUT/suites"
tap=$VFM_OUT/results.tap
: >"$tap"
: >"$VFM_OUT/measurements"
pass=0 fail=0 skip=0

record() { # line
	echo "$1" >>"$tap"
	case "$1" in
	"not ok "*) fail=$((fail + 1)) ;;
	"ok "*) pass=$((pass + 1)) ;;
	"skip "*) skip=$((skip + 1)) ;;
	esac
}

selected() { # suite-name
	[ -z "${VFM_SUITES:-}" ] && return 0
	local p
	for p in $VFM_SUITES; do
		# shellcheck disable=SC2053 # p is a pattern
		[[ $1 == $p ]] && return 0
	done
	return 1
}

run_suite() { # path
	local path=$1 name limit log rc nres=0 nfail=0 line last=
	name=$(basename "$path" .sh)
	log=$VFM_OUT/suites/$name.log
	limit=$(sed -n 's/^# vfm-timeout: *\([0-9][0-9]*\).*/\1/p' "$path" | head -n1)
	limit=${limit:-${VFM_SUITE_TIMEOUT:-600}}
	echo "vfm-driver: === suite $name (limit ${limit}s)"
	local t0 t1
	t0=$(date +%s.%N)
	# Result lines are parsed from the suite's output (stdout and stderr).
	exec 3< <(cd "$VFM_ROOT" && timeout -k 10 "$limit" bash "$path" 2>&1 </dev/null; echo "#vfm-rc $?")
	while IFS= read -r line <&3; do
		case "$line" in
		"#vfm-rc "*)
			rc=${line#"#vfm-rc "}
			continue
			;;
		esac
		echo "$line"
		echo "$line" >>"$log"
		case "$line" in
		"ok "* | "not ok "* | "skip "*)
			local kind=${line%% *} rest
			[ "$kind" = not ] && kind="not ok"
			rest=${line#"$kind "}
			record "$kind $name/$rest"
			nres=$((nres + 1))
			[ "$kind" = "not ok" ] && nfail=$((nfail + 1))
			;;
		"# measure "*)
			echo "$name/${line#"# measure "}" >>"$VFM_OUT/measurements"
			;;
		*) [ -n "$line" ] && last=$line ;;
		esac
	done
	exec 3<&-
	t1=$(date +%s.%N)
	rc=${rc:-1}
	case "$rc" in
	0) [ "$nres" -gt 0 ] || record "not ok $name - reported no results" ;;
	77) [ "$nres" -gt 0 ] || record "skip $name - ${last:-suite skipped}" ;;
	124 | 137) record "not ok $name - timed out after ${limit}s" ;;
	*) [ "$nfail" -gt 0 ] || record "not ok $name - exited with status $rc${last:+ ($last)}" ;;
	esac
	printf 'vfm-driver: === suite %s done in %.1fs (status %s)\n' "$name" \
		"$(awk "BEGIN { print $t1 - $t0 }")" "$rc"
}

for s in "$VFM_ROOT"/tests/vm/guest.d/*.sh; do
	[ -e "$s" ] || continue
	selected "$(basename "$s" .sh)" || continue
	run_suite "$s"
done

# A warning, oops or sanitizer report from the kernel fails the run even
# when every suite passed.
bad=$(dmesg | grep -E 'BUG:|Oops|WARNING:|general protection|Kernel panic|KASAN|UBSAN|kernel BUG|refcount_t:|list_(add|del) corruption|INFO: task .* blocked' | head -n 5)
if [ -n "$bad" ]; then
	record "not ok kernel/log - $(echo "$bad" | head -n1)"
	echo "vfm-driver: kernel log:"
	echo "$bad"
else
	record "ok kernel/log"
fi

printf 'passed %d\nfailed %d\nskipped %d\n' "$pass" "$fail" "$skip" >"$VFM_OUT/summary"
echo "vfm-driver: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
