#!/bin/bash
# Stream format 2 (ZERO records) with the driver, on the two edu functions
# bound to vfmig_stub (A: source, B: destination), 16 MiB of device memory
# each, a few percent of it written by the in-kernel workload:
#  - the driver states formats 1,2 and vfmig/stream_format takes 1 or 2 only;
#  - through the uAPI (a python VFIO client): a format 2 STOP_COPY stream
#    holds a ZERO record per absent page and no more bytes; it loads into
#    B (digests equal); corrupt ZERO records are refused at RESUMING->STOP
#    with B's state untouched; a format 1 stream (an old source) of the same
#    state still loads;
#  - vfio -> vfio with the agents, the workload on: the handshake picks
#    format 2, the agent sets vfmig/stream_format (one-shot: it reads 1
#    again after the stream), the digests match and
#    the stream stays within 1.02 x the pages the workload wrote + a
#    record header per page (a zero page is never sent as data).
# vfm-timeout: 900
# shellcheck source=tests/vm/guest-lib.sh
. "$VFM_ROOT/tests/vm/guest-lib.sh"

bin=$VFM_BUILD/bin/vfmig
if [ ! -x "$bin" ]; then
	echo "skip zero-pages - vfmig not built in $VFM_BUILD"
	exit 77
fi
if [ "${VFM_HAVE_STUB:-0}" != 1 ]; then
	echo "skip zero-pages - ${VFM_STUB_REASON:-vfmig_stub.ko not loaded}"
	exit 77
fi
A=$VFM_EDU_A
B=$VFM_EDU_B
knob() { echo "/sys/bus/pci/devices/$1/vfmig/$2"; }
sys() { echo "/sys/bus/pci/devices/$1/migration/$2"; }
if [ ! -e "$(sys "$A" stream_formats)" ]; then
	vfm_not_ok zero-pages/formats "this vfmig_stub.ko has no migration/stream_formats"
	exit 1
fi
work=$(mktemp -d /tmp/zero-pages.XXXXXX)
head -c 48 /dev/urandom | base64 -w0 >"$work/secret"
chmod 600 "$work/secret"
declare -A saved
for d in "$A" "$B"; do
	for k in dirty_rate mem_size stream_format; do
		saved[$d/$k]=$(cat "$(knob "$d" "$k")")
	done
done
restore() {
	for d in "$A" "$B"; do
		for k in dirty_rate mem_size stream_format; do
			echo "${saved[$d/$k]}" >"$(knob "$d" "$k")" 2>/dev/null
		done
	done
	mkdir -p "$VFM_OUT/46-zero-pages"
	cp "$work"/*.log "$work"/*.json "$work"/*.out "$VFM_OUT/46-zero-pages/" 2>/dev/null
	rm -rf "$work"
}
trap restore EXIT
ip link set lo up 2>/dev/null

# --- the knobs
fm=$(cat "$(sys "$A" stream_formats)")
if [ "$fm" = 1,2 ]; then
	vfm_ok zero-pages/stream_formats
else
	vfm_not_ok zero-pages/stream_formats "migration/stream_formats is '$fm', want 1,2"
fi
bad=0
for v in 0 3 x; do
	echo "$v" >"$(knob "$A" stream_format)" 2>/dev/null && bad=1
done
echo 2 >"$(knob "$A" stream_format)" || bad=1
[ "$(cat "$(knob "$A" stream_format)")" = 2 ] || bad=1
if [ "$bad" = 0 ]; then
	vfm_ok zero-pages/stream_format-knob
else
	vfm_not_ok zero-pages/stream_format-knob "vfmig/stream_format took 0, 3 or x, or refused 2"
fi

# --- through the uAPI, in one VFIO session (closing a device clears its
# state): zeroed memory (a resize zeroes it), the workload on A for a few
# seconds, then stream format 2 and format 1 out of A and into B
for d in "$A" "$B"; do
	echo 0 >"$(knob "$d" dirty_rate)"
	echo $((8 << 20)) >"$(knob "$d" mem_size)"
	echo $((16 << 20)) >"$(knob "$d" mem_size)"
done
cat >"$work/zero.py" <<'PY'
# zero.py A B WORKDIR: a minimal VFIO migration v2 client (ctypes, no
# third-party code) that prints "ok NAME" / "not ok NAME - WHY" lines.
import ctypes, os, struct, sys, time

libc = ctypes.CDLL(None, use_errno=True)
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
IO = lambda nr: (ord(";") << 8) | (100 + nr)
SET_IOMMU, GROUP_SET_CONTAINER, GET_DEVICE_FD, RESET, FEATURE = IO(2), IO(4), IO(6), IO(11), IO(17)
FEATURE_SET, MIG_DEVICE_STATE = 1 << 17, 2
STOP, RUNNING, STOP_COPY, RESUMING = 1, 2, 3, 4
A, B, work = sys.argv[1:4]
PAGES = 4096
failed = 0

T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    T.append(c)


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def result(name, good, why=""):
    global failed
    print(f"ok zero-pages/{name}" if good else f"not ok zero-pages/{name} - {why}", flush=True)
    failed += not good


def ioctl(fd, req, arg):
    r = libc.ioctl(fd, req, arg)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def sysfs(bdf, rel, val=None):
    path = f"/sys/bus/pci/devices/{bdf}/{rel}"
    if val is None:
        with open(path) as f:
            return f.read().strip()
    with open(path, "w") as f:
        f.write(f"{val}\n")


cont = os.open("/dev/vfio/vfio", os.O_RDWR)
dev = {}
for bdf in (A, B):
    grp = os.path.basename(os.readlink(f"/sys/bus/pci/devices/{bdf}/iommu_group"))
    group = os.open(f"/dev/vfio/{grp}", os.O_RDWR)
    cfd = ctypes.c_int(cont)
    ioctl(group, GROUP_SET_CONTAINER, ctypes.addressof(cfd))
    if not dev:
        ioctl(cont, SET_IOMMU, 3)  # VFIO_TYPE1v2_IOMMU
    dev[bdf] = ioctl(group, GET_DEVICE_FD, ctypes.c_char_p(bdf.encode()))


def state(bdf, st):
    buf = ctypes.create_string_buffer(struct.pack("<IIIi", 16, FEATURE_SET | MIG_DEVICE_STATE, st, -1))
    ioctl(dev[bdf], FEATURE, ctypes.addressof(buf))
    return struct.unpack_from("<i", buf.raw, 12)[0]


def digest(bdf):
    return sysfs(bdf, "migration/state_digest")


def save(fmt):
    """A's STOP_COPY stream in format @fmt; A back in STOP."""
    sysfs(A, "vfmig/stream_format", fmt)
    data = state(A, STOP_COPY)
    out = bytearray()
    while True:
        b = os.read(data, 1 << 20)
        if not b:
            break
        out += b
    os.close(data)
    state(A, STOP)
    return bytes(out)


def load(blob):
    """B: RESUMING <- @blob, STOP. None if loaded, else the refusal; a
    refused B is reset (RUNNING, then STOP) after its digest is taken."""
    state(B, STOP)
    data = state(B, RESUMING)
    try:
        for o in range(0, len(blob), 1 << 20):
            os.write(data, blob[o:o + (1 << 20)])
        os.close(data)
        state(B, STOP)
        return None, digest(B)
    except OSError as e:
        try:
            os.close(data)
        except OSError:
            pass
        d = digest(B)  # in ERROR: what it holds
        ioctl(dev[B], RESET, None)
        state(B, STOP)
        return str(e), d


def records(s):
    o = 512
    while o + 24 <= len(s):
        t, n, off, dc = struct.unpack_from("<IIQI", s, o)
        yield o, t, n, off, dc
        o += 24 + n


def corrupt(s, kind):
    s = bytearray(s)
    o, t, n, off, dc = next(r for r in records(s) if r[1] == 4)
    if kind == "crc":  # a flipped offset bit: the header CRC no longer matches
        s[o + 9] ^= 0x10
        return bytes(s)
    if kind == "outside":
        off = struct.unpack_from("<Q", s, 8)[0]
    elif kind == "unaligned":
        off += 512
    elif kind == "datacrc":
        dc = 1
    elif kind == "format1":  # an old header over format 2 records
        struct.pack_into("<H", s, 4, 1)
        struct.pack_into("<I", s, 508, crc32c(bytes(s[:508])))
    struct.pack_into("<IIQI", s, o, t, n, off, dc)
    struct.pack_into("<I", s, o + 20, crc32c(bytes(s[o:o + 20])))
    return bytes(s)


try:
    # a sparse state: the workload writes a few hundred pages of 4096
    sysfs(A, "vfmig/dirty_rate", 400000)
    time.sleep(4)
    sysfs(A, "vfmig/dirty_rate", 0)
    time.sleep(0.5)
    state(A, STOP)
    res = int(dict(l.split() for l in sysfs(A, "vfmig/stats").splitlines())["resident_pages"])
    print(f"# measure zero-pages/resident {res} pages", flush=True)
    result("sparse-state", 0 < res < PAGES // 2, f"{res} of {PAGES} pages resident")
    da = digest(A)

    f2 = save(2)
    rs = list(records(f2))
    nzero = sum(1 for r in rs if r[1] == 4)
    ndata = sum(r[2] for r in rs if r[1] == 2) // 4096
    want = 512 + res * (24 + 4096) + (PAGES - res) * 24
    regs_end = len(f2) - want
    print(f"# measure zero-pages/format2-bytes {len(f2)} bytes", flush=True)
    result("format2-stream",
           struct.unpack_from("<H", f2, 4)[0] == 2 and nzero == PAGES - res and ndata == res and 0 < regs_end <= 24 + 8192 + 24 + 16,
           f"{nzero} ZERO records (want {PAGES - res}), {ndata} data pages (want {res}), {len(f2)} bytes (want {want} + regs + end)")
    err, d = load(f2)
    result("format2-roundtrip", err is None and d == da, f"load: {err}, digest {d[:16]} want {da[:16]}")

    for kind in ("crc", "outside", "unaligned", "datacrc", "format1"):
        err, d = load(f2)  # B holds A's state ...
        err, d = load(corrupt(f2, kind))  # ... and keeps it on a refusal
        result(f"corrupt-{kind}-refused", err is not None and d == da,
               f"load: {err or 'accepted'}, digest {d[:16]} want {da[:16]}")

    # an old source's stream (format 1) of the same state: every page as
    # DATA; B commits it only whole
    f1 = save(1)
    rs = list(records(f1))
    print(f"# measure zero-pages/format1-bytes {len(f1)} bytes", flush=True)
    ok1 = struct.unpack_from("<H", f1, 4)[0] == 1 and not any(r[1] == 4 for r in rs) and len(f1) > PAGES * 4096
    err, d = load(f1)
    result("format1-accepted", ok1 and err is None and d == da,
           f"format-1 shape {ok1}, load: {err}, digest {d[:16]} want {da[:16]}")
except OSError as e:
    result("uapi", False, f"VFIO: {e}")
sys.exit(1 if failed else 0)
PY
python3 "$work/zero.py" "$A" "$B" "$work" 2>&1 | tee "$work/zero.out"

# --- the agents, vfio -> vfio: the handshake picks format 2; a state the
# workload writes while it moves (a device's state lives only while open)
echo 1 >"$(knob "$A" stream_format)"
rate=200000
echo "$rate" >"$(knob "$A" dirty_rate)"
port=7960
"$bin" recv --device "vfio:$B" --listen "127.0.0.1:$port" --secret-file "$work/secret" \
	--log "$work/agents-dst.log" --stats-json "$work/agents-dst.json" --timeout-s 60 --wait-s 60 \
	>"$work/agents-dst.out" 2>&1 &
rpid=$!
timeout 300 "$bin" send --device "vfio:$A" --to "127.0.0.1:$port" --secret-file "$work/secret" \
	--log "$work/agents-src.log" --stats-json "$work/agents-src.json" --timeout-s 60 \
	>"$work/agents-src.out" 2>&1
src_rc=$?
timeout 120 tail --pid="$rpid" -f /dev/null
wait "$rpid"
dst_rc=$?
echo 0 >"$(knob "$A" dirty_rate)"
if [ "$src_rc-$dst_rc" != 0-0 ]; then
	vfm_not_ok zero-pages/agents-vfio "send $src_rc recv $dst_rc: $(tail -n 3 "$work/agents-src.log" | head -c 400)"
elif ! grep -q '"sentence":"stream format 2:' "$work/agents-src.log"; then
	vfm_not_ok zero-pages/agents-vfio "the handshake did not pick format 2"
elif python3 - "$work/agents-src.json" "$rate" <<'PY'; then
import json, math, sys
s = json.load(open(sys.argv[1]))
rate, pages = int(sys.argv[2]), 4096
# Every data page sent was written by the workload since the device opened
# (once before the first pass reached it, or again after it was sent); the
# workload writes at most its rate (a closed device's count is gone, so
# bound it by the rate over the migration and 2 s around it).
writes = math.ceil(rate * (s["total_ms"] / 1000 + 2) / 4096)
bound = 1.02 * writes * 4096 + 512 + (pages + writes + 2) * 24 + 8192 + 16
print("# agents: %d stream bytes, at most %d pages written, bound %.0f, downtime %.1f ms"
      % (s["bytes"], writes, bound, s["downtime_ms"]))
assert writes < pages // 2, writes
assert s["verified"] and s["digest_match"], s
assert s["bytes"] <= bound, (s["bytes"], bound)
assert s["bytes"] < pages * 4096 // 2, s["bytes"]  # format 1: > 16 MiB
PY
	vfm_ok zero-pages/agents-vfio
else
	vfm_not_ok zero-pages/agents-vfio "digests differ, too many writes or stream bytes over the bound"
fi
# one-shot: the agent wrote 2 (the stream was format 2: the bound above),
# the stream took it, and a client that never writes it gets format 1
if [ "$(cat "$(knob "$A" stream_format)")" = 1 ]; then
	vfm_ok zero-pages/stream_format-one-shot
else
	vfm_not_ok zero-pages/stream_format-one-shot "vfmig/stream_format reads $(cat "$(knob "$A" stream_format)") after a stream, want 1"
fi
