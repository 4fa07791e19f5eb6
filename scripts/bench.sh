#!/usr/bin/env bash
# Benchmark: writeboost vs dm-writecache vs dm-cache vs the raw disks, side
# by side in one guest boot (absolute numbers under TCG are meaningless;
# the ratios are what counts). Not a test: it prints figures.
#   BENCH_RUNTIME=10 (seconds per run)  BENCH_WS=32M (working set)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=$(mktemp)
echo "[bench] booting the guest (slow disk 200 IOPS, fast disk 2000 IOPS / 200 MiB/s)" >&2
WB_SLOW_IOPS=200 WB_FAST_IOPS=2000 WB_FAST_BPS=$((200 << 20)) \
    python3 "$here/guest.py" run -v --timeout 1800 --test-timeout 1500 "$root/tests/bench/compare.sh" 2>&1 \
    | grep -a "^BENCH" > "$out" || true
python3 - "$out" <<'PY'
import sys
vals, info = {}, []
for line in open(sys.argv[1]):
    p = line.split()
    if p[0] == "BENCH" and len(p) >= 3 and p[1] != "config":
        try: vals[p[1]] = (float(p[2]), p[3] if len(p) > 3 else "")
        except ValueError: vals[p[1]] = (0.0, "failed")
    elif p[0] == "BENCH" and p[1] == "config": info.append(" ".join(p[2:]))
    elif p[0] == "BENCH-INFO": info.append(" ".join(p[1:]))
if not vals:
    print("bench: no results (see build/guest-logs)"); sys.exit(1)
print("4 KiB random writes, direct, libaio, iodepth 32 (TCG guest; compare ratios only)")
for k, (v, u) in vals.items():
    print(f"  {k:34s} {v:10.0f} {u}")
CEIL = 8000.0  # measured guest per-I/O ceiling for 4 KiB writes (docs/toolchain.md)
wb = vals.get("writeboost", (0, ""))[0]
wc = vals.get("dm-writecache", (0, ""))[0]
dc = vals.get("dm-cache", (0, ""))[0]
if wb and wc: print(f"  ratio writeboost / dm-writecache   {wb / wc:10.2f}")
if wb and dc: print(f"  ratio writeboost / dm-cache        {wb / dc:10.2f}")
if wb: print(f"  ratio writeboost / ceiling(8000)   {wb / CEIL:10.2f}")
s1 = vals.get("writeboost_sustained_320M", (0, ""))[0]; s2 = vals.get("dm-writecache_sustained_320M", (0, ""))[0]
if s1 and s2: print(f"  ratio sustained wb / writecache    {s1 / s2:10.2f}")
for i in info: print("  info:", i)
PY
rm -f "$out"
