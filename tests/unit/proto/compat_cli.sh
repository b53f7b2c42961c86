#!/usr/bin/env bash
# Runs the real `vfmig compat` on every deploy/examples pair and checks the
# exit code (0 compatible, 3 refused, 2 malformed/usage) and key text.
# Usage: compat_cli.sh VFMIG EXAMPLES_DIR
set -u
vfmig=$1
ex=$2
fails=0
passes=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# check NAME EXPECTED_RC ARGS... -- PATTERN...
check() {
	local name=$1 want=$2 rc
	shift 2
	local args=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		args+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	timeout 20 "$vfmig" compat "${args[@]}" >"$out" 2>&1
	rc=$?
	if [ "$rc" != "$want" ]; then
		echo "FAIL $name: exit $rc, expected $want"
		sed 's/^/    /' "$out"
		fails=$((fails + 1))
		return
	fi
	for pat in "$@"; do
		if ! grep -qE -- "$pat" "$out"; then
			echo "FAIL $name: output lacks /$pat/"
			sed 's/^/    /' "$out"
			fails=$((fails + 1))
			return
		fi
	done
	echo "ok   $name (exit $rc)"
	passes=$((passes + 1))
}

pair() { echo "$ex/$1/src" "$ex/$1/dst"; }

# shellcheck disable=SC2046
check compatible 0 $(pair compatible) -- '^PASS +model_match' \
	'^PASS +param_allowed +memory' 'verdict: COMPATIBLE'
check model-mismatch 3 $(pair model-mismatch) -- \
	'^FAIL +model_mismatch .*vfmig-edu does not match destination model gfx-a100' \
	'verdict: REFUSED \(1 of'
check version-out-of-range 3 $(pair version-out-of-range) -- \
	'^FAIL +version_incompatible .*2\.0\.5 is outside .*2\.0\.2-2\.0\.4,2\.1\.0-'
check gfx-4GB 3 $(pair gfx-4GB) -- \
	'^FAIL +param_value_not_allowed +memory +source parameter memory=4096 is not allowed at the destination \(allowed: 8192\)'
check rss-off-allowed 0 $(pair rss-off-allowed) -- \
	'^PASS +param_destination_only_off +rss' \
	'^NOTE +destination parameter rss will be set to off' 'COMPATIBLE'
check rss-off-not-allowed 3 $(pair rss-off-not-allowed) -- \
	'^FAIL +param_destination_only_not_off +rss .*\(allowed: 1-16\)'
check missing-feature 3 $(pair missing-feature) -- \
	'^FAIL +feature_unsupported +mmap' '^PASS +feature_supported +p2p'
check missing-feature-not-required 0 --require pre_copy,p2p $(pair missing-feature) -- \
	'COMPATIBLE'
check several-failures 3 $(pair several-failures) -- \
	'^FAIL +version_incompatible' '^FAIL +param_value_not_allowed +memory' \
	'^FAIL +param_missing_at_destination +tiling' \
	'^FAIL +param_destination_only_not_off +ecc' \
	'^FAIL +feature_unsupported +p2p' '^FAIL +feature_unsupported +mmap' \
	'REFUSED \(6 of 8 rules failed\)'
check malformed-range 2 $(pair malformed-range) -- \
	'^vfmig compat: .*malformed-range/dst: version_compatible: column 11: expected a digit'
check vfmig-edu-self 0 "$ex/vfmig-edu" "$ex/vfmig-edu" -- 'vfmig-edu 2\.0\.3'
check json 3 --json $(pair gfx-4GB) -- '^\{"accept":false,"failed":1,' \
	'"code":"param_value_not_allowed","code_num":7,"passed":false,"subject":"memory"'
check json-ok 0 --json $(pair rss-off-allowed) -- '"accept":true' \
	'"notes":\["destination parameter rss will be set to off'
check missing-dir 2 "$ex/does-not-exist" "$ex/vfmig-edu" -- \
	'does-not-exist/model: missing'
check usage-one-arg 2 "$ex/vfmig-edu" -- 'expected two directories'
check usage-bad-option 2 --bogus "$ex/vfmig-edu" "$ex/vfmig-edu" -- 'usage:'
check usage-bad-require 2 --require 'a b/c' "$ex/vfmig-edu" "$ex/vfmig-edu" -- '--require'
check help 0 --help -- '^usage: vfmig compat' 'Exit codes'

# JSON must parse when python3 is there.
if command -v python3 >/dev/null; then
	for n in compatible gfx-4GB several-failures rss-off-allowed; do
		# shellcheck disable=SC2046
		if "$vfmig" compat --json $(pair $n) | python3 -c 'import json,sys; json.load(sys.stdin)'; then
			passes=$((passes + 1))
		else
			echo "FAIL json-parse $n"
			fails=$((fails + 1))
		fi
	done
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
