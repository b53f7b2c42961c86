#!/usr/bin/env bash
# vfm-bench-model on synthetic vfmig-bench results: two links (1gbit and
# 10gbit folders), runs made from known model parameters. Checks that the
# fitted parameters come back, that the per-cell errors are ~0, that the
# projection is labelled as one with its assumptions, and the plots' form.
set -euo pipefail
MODEL=$1
OUT=$2
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 77; }
rm -rf "$OUT" && mkdir -p "$OUT"
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
P = dict(stop=0.02, resume=0.5, commit=1.0, state_ns=0.25, final0=1.5, cpu_ns=2.0)
def run(size, dirty, fb, link, rep):
    fin = P["final0"] + fb * max(1e3 / link, P["cpu_ns"] / 1e6)
    com = P["commit"] + P["state_ns"] / 1e6 * size
    return dict(ok=True, transport="tcp", datapath="mmap", size=size, dirty_Bps=dirty,
                streams=1, zero_pct=0, stream_format=2, rep=rep, peer_Bps=link,
                floor_ms=fb / link * 1e3, final_bytes=fb, stop_ms=P["stop"],
                final_transfer_ms=fin, resume_ms=P["resume"], commit_ms=com,
                downtime_ms=P["stop"] + fin + P["resume"] + com)
for label, link in (("1gbit", 121e6), ("10gbit", 1195e6)):
    runs = []
    for rep in (1, 2):
        for size in (64 << 20, 256 << 20):
            for dirty, fb in ((0, 320), (48 << 20, (size >> 3))):
                runs.append(run(size, dirty, fb, link, rep))
    os.makedirs(os.path.join(out, label))
    json.dump({"tool": "vfmig-bench", "runs": runs}, open(os.path.join(out, label, "results.json"), "w"))
# One run's source log: its pre-copy iterations (the convergence plot).
d = os.path.join(out, "1gbit", "runs", "tcp-mmap-256M-d48M-s1-r1")
os.makedirs(d)
with open(os.path.join(d, "src.log"), "w") as f:
    for i, (b, dirty) in enumerate(((268435456, 90e6), (90e6, 30e6), (30e6, 10e6)), 1):
        f.write(json.dumps(dict(v=1, event="iteration", iteration=i, bytes=b, ms=b / 121e3,
                                dirty_bytes=dirty, decision="continue")) + "\n")
PY
"$MODEL" --out "$OUT/model" "$OUT/1gbit/results.json" "$OUT/10gbit/results.json" >"$OUT/model.txt"
grep -q "PROJECTION (not measured)" "$OUT/model.txt"
python3 - "$OUT/model/model.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
fit = m["model"]
def near(k, want, tol=0.01):
    got = fit[k]
    assert abs(got - want) <= tol * abs(want) + 1e-6, (k, got, want)
near("stop_ms", 0.02); near("resume_ms", 0.5); near("commit_ms", 1.0)
near("verify_ns_per_byte", 0.25); near("final0_ms", 1.5); near("cpu_ns_per_byte", 2.0)
assert fit["runs"] == 16, fit
cells = m["cells"]
assert len(cells) == 8, len(cells)
for c in cells:
    assert c["runs"] == 2 and abs(c["model_error"]) < 1e-3 and abs(c["loo_model_error"]) < 1e-3, c
pr = m["projection"]
assert pr["label"] == "projection, not measured" and len(pr["assumptions"]) >= 3
assert len(pr["cells"]) == 4
for c in pr["cells"]:
    assert [a["link_gbps"] for a in c["at"]] == [25, 100]
    assert c["final_bytes_from"] == "10gbit"
    # 2 ns/B is 500 MB/s: slower than either projected link.
    assert all(a["bound_by"] == "agents" for a in c["at"]), c
print("model.json: parameters recovered, per-cell errors ~0, projection labelled")
PY
grep -q '^kind,link,size' "$OUT/model/model.csv"
[ "$(grep -c '^measured,' "$OUT/model/model.csv")" -eq 8 ]
[ "$(grep -c '^projection,' "$OUT/model/model.csv")" -eq 8 ]
if command -v gnuplot >/dev/null; then
	for p in downtime_split downtime_vs_link convergence; do
		head -c 8 "$OUT/model/$p.png" | od -An -c | grep -q 'P   N   G' || { echo "$p.png is not a PNG"; exit 1; }
	done
	grep -q '^1 ' "$OUT/model/conv.dat"
fi
echo "PASS"
