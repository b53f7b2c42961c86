# Shared by the tests/deploy scripts (sourced). Exit 77 is SKIP; with CI=true
# a tool that scripts/setup.sh installs must be there, so its absence fails.
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
skip() {
	echo "SKIP: $*" >&2
	exit 77
}
# need CMD PACKAGE: skip (or fail under CI) when CMD is missing.
need() {
	if ! command -v "$1" >/dev/null 2>&1; then
		if [ "${CI:-}" = true ]; then
			fail "$1 is missing (Debian package $2, installed by scripts/setup.sh)"
		fi
		skip "$1 is missing (Debian package $2; run scripts/setup.sh)"
	fi
}
# stage BUILD_DIR COMPONENT ROOT: cmake --install one component into ROOT
# with the prefix the build was configured with (its files name it).
stage() {
	DESTDIR=$3 cmake --install "$1" --component "$2" >/dev/null ||
		fail "cmake --install --component $2 failed"
}
