#!/usr/bin/env bash
# Two hosts on one machine, as a smoke test: bench/netns-link.sh makes two
# network namespaces joined by a veth pair shaped to 1 Gbit/s (tbf), and
# vfmig-bench runs one small sim migration across it (64M, dirtied at 20 MB/s;
# `vfmig send` in one namespace, `vfmig recv` in the other through --peer-cmd)
# with iperf3 measuring the same link before and after it. Asserts: migrated,
# digests verified and equal (the source's --stats-json), iperf3 measured the
# shaped link, and nothing the script made is left. No speed is asserted
# beyond "iperf3 went through the shaper" (<= 1.05 Gbit/s).
#   netns.sh VFMIG_BENCH NETNS_LINK_SH OUT_DIR
# Skips (77) only when this machine cannot make namespaces, veth or tbf (not
# root, no kernel support). A missing package that scripts/setup.sh installs
# (iperf3, iproute2, python3) is a skip outside CI and a failure with CI=true.
set -euo pipefail

BENCH=${1:?usage: netns.sh VFMIG_BENCH NETNS_LINK_SH OUT_DIR}
LINK=${2:?usage: netns.sh VFMIG_BENCH NETNS_LINK_SH OUT_DIR}
OUT=${3:?usage: netns.sh VFMIG_BENCH NETNS_LINK_SH OUT_DIR}
NAME=vfmtest

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

for tool in ip tc iperf3 python3 flock timeout; do
	if ! command -v "$tool" >/dev/null; then
		[ "${CI:-}" != true ] || fail "$tool is not installed (scripts/setup.sh installs it; CI=true)"
		echo "SKIP: $tool is not installed (scripts/setup.sh installs it)."
		exit 77
	fi
done
set +e
why=$(bash "$LINK" check)
rc=$?
set -e
if [ "$rc" -eq 77 ]; then
	echo "SKIP: $why"
	exit 77
fi
[ "$rc" -eq 0 ] || fail "netns-link.sh check exited $rc: $why"

rm -rf "$OUT"
mkdir -p "$OUT"
set +e
timeout -k 10 100 bash "$LINK" bench --name "$NAME" --rate 1gbit --timeout 80 --out "$OUT" -- \
	"$BENCH" --sizes 64M --dirty 20M --streams 1 --datapath mmap --reps 1 \
	--rss-sizes none --no-plots --peer-seconds 2 --timeout-s 20 \
	>"$OUT/stdout.txt" 2>"$OUT/stderr.txt"
rc=$?
set -e
cat "$OUT/stdout.txt"
cat "$OUT/stderr.txt" >&2

# Everything it made is gone, whatever happened.
left=$(ip netns list | awk '{print $1}' | grep -e "^$NAME-" || true)
[ -z "$left" ] || fail "namespaces left behind: $left"
! ip link show "$NAME-s" >/dev/null 2>&1 || fail "veth $NAME-s left behind"
grep -q "removed: netns $NAME-src, $NAME-dst" "$OUT/stderr.txt" || fail "no 'removed' line"
grep -q "made: netns $NAME-src .*tbf rate 1gbit" "$OUT/stderr.txt" || fail "no 'made' line"
[ "$rc" -eq 0 ] || fail "netns-link.sh bench exited $rc"

python3 - "$OUT/1gbit" <<'PY' || fail "the migration or the link measurement is not as expected"
import glob, json, os, sys
d = sys.argv[1]
o = json.load(open(os.path.join(d, "results.json")))
runs = [r for r in o["runs"] if not r.get("skipped")]
assert len(runs) == 1, f"{len(runs)} runs"
r = runs[0]
assert r["ok"], r["why"]
assert r["size"] == 64 << 20 and r["dirty_Bps"] > 0, r
srcs = glob.glob(os.path.join(d, "runs", "*", "src.json"))
assert len(srcs) == 1, srcs
s = json.load(open(srcs[0]))
assert s["result"] == "migrated", s
assert s["verified"] is True, "source stats: verified is not true"
assert s["digest_match"] is True, "source stats: digest_match is not true"
assert s["state_digest"] == s["destination_state_digest"], s
# The receiver ran in the other namespace: its log came back through --peer-cmd.
dst = open(glob.glob(os.path.join(d, "runs", "*", "dst.log"))[0]).read()
assert '"role":"destination"' in dst and '"event":"committed"' in dst, "no destination log"
# iperf3 measured the shaped link in the same run, before and after.
ip = [p for p in o["peers"]["iperf3"] if p["streams"] == 1]
assert ip, "no iperf3 result"
p = ip[0]
for k in ("before_Bps", "after_Bps"):
    assert p[k] > 0, f"iperf3 {k} = {p[k]}"
    assert p[k] <= 1.05e9 / 8, f"iperf3 {k} = {p[k] / 1e6:.0f} MB/s: not through a 1gbit shaper"
assert r["peer_Bps"] > 0 and r["floor_ms"] is not None and r["floor_ms"] > 0, r
print("iperf3 %.1f MB/s (before %.1f, after %.1f); downtime %.1f ms, floor %.1f ms, "
      "final %.1f MiB; digests verified and equal"
      % (p["Bps"] / 1e6, p["before_Bps"] / 1e6, p["after_Bps"] / 1e6, r["downtime_ms"],
         r["floor_ms"], r["final_bytes"] / 1048576))
PY
echo "PASS: one migration across a 1gbit tbf-shaped veth between two namespaces; all removed"
