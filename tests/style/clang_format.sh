#!/usr/bin/env bash
# Every tracked userspace .c/.h file is formatted as .clang-format says.
set -uo pipefail
root=$1
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed"; exit 77; }
cd "$root" || exit 1
if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo "SKIP: not a git checkout, cannot list the tracked files"
	exit 77
fi
bad=0 n=0
while IFS= read -r f; do
	n=$((n + 1))
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f (clang-format -i $f)"
		bad=$((bad + 1))
	fi
done < <(git ls-files '*.c' '*.h' | grep -v '^kernel/')
echo "$n files checked, $bad not formatted"
[ "$bad" -eq 0 ]
