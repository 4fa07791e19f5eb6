#!/usr/bin/env bash
# Benchmark: writeboost vs dm-linear vs dm-writecache vs dm-cache vs the raw
# disks, side by side in one guest boot (absolute numbers under TCG mean
# little; the ratios are what counts). Not a test: it prints figures.
# See Documentation/performance.md for the rows and what each ratio means.
#
#   BENCH_RUNTIME=10        seconds cap of the short runs of one configuration
#                           and round (default 10, split over the repeats)
#   BENCH_ROUNDS=2          rounds of the short runs, every configuration in turn
#   BENCH_REPEAT=2          runs of a short job per configuration and round
#                           (the report takes the best of ROUNDS x REPEAT)
#   BENCH_SUSTAINED_S=40    seconds of each sustained run (default 4x runtime)
#   BENCH_SUS_CACHE_MB=128  cache size of the sustained runs
#   BENCH_SECTIONS="rows sustained scale reads"  which parts to run (for a quick look)
#   BENCH_ROWS="seqw r64k", BENCH_KINDS="lin wb wc": which rows (r4k32 r4k1 r64k
#                           r128k seqw seqr) and configurations (lin wb wc dc) of
#                           the rows section run; empty: all
#   WB_SLOW_IOPS/WB_SLOW_BPS, WB_FAST_IOPS/WB_FAST_BPS: the QEMU throttles
#
# Raw outputs (fio JSON, stat snapshots, status dumps) end up in
# build/bench/raw/, the serial log in build/bench/serial.log, the tables
# in build/bench/report.txt (re-print: python3 tests/bench/report.py build/bench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=$root/build/bench
rt=${BENCH_RUNTIME:-10}
sus=${BENCH_SUSTAINED_S:-$((rt * 4))}
susmb=${BENCH_SUS_CACHE_MB:-128}
export WB_SLOW_IOPS=${WB_SLOW_IOPS:-200} WB_SLOW_BPS=${WB_SLOW_BPS:-$((150 << 20))}
export WB_FAST_IOPS=${WB_FAST_IOPS:-2000} WB_FAST_BPS=${WB_FAST_BPS:-$((200 << 20))}
rm -rf "$out"
mkdir -p "$out/raw"
# The guest writes a tar of its outputs onto this raw disk (vdc).
truncate -s 64M "$out/output.img"
{
    echo "BENCH_RUNTIME=$rt"
    echo "BENCH_SUSTAINED_S=$sus"
    echo "BENCH_SUS_CACHE_MB=$susmb"
    echo "BENCH_ROUNDS=${BENCH_ROUNDS:-2}"
    echo "BENCH_REPEAT=${BENCH_REPEAT:-2}"
    echo "BENCH_SECTIONS='${BENCH_SECTIONS:-rows sustained scale reads}'"
    echo "BENCH_ROWS='${BENCH_ROWS:-}'"
    echo "BENCH_KINDS='${BENCH_KINDS:-}'"
    cat "$root/tests/bench/compare.sh"
} > "$out/compare.sh"
echo "[bench] booting the guest: slow disk vda $WB_SLOW_IOPS IOPS / $((WB_SLOW_BPS >> 20)) MiB/s," \
     "fast disk vdb $WB_FAST_IOPS IOPS / $((WB_FAST_BPS >> 20)) MiB/s, RAM disk ram0 512 MiB" >&2
start=$(date +%s)
# TCG speed follows the host's load: the report shows it.
echo "load_before $(cut -d' ' -f1-3 /proc/loadavg)" > "$out/host.txt"
echo "host_cpus $(nproc)" >> "$out/host.txt"
rc=0
# 2.5 GiB of guest memory: the RAM disk (512 MiB) and the index of the
# 64 GiB cache. The cache disk holds the sustained cache plus the 8 MiB head
# of the 64 GiB cache.
python3 "$here/guest.py" run -v --memory-mb 2560 --kernel-args "brd.rd_nr=1 brd.rd_size=524288" \
    --backing-mb 1024 --cache-mb $((susmb + 64)) --extra-disk "$out/output.img" \
    --timeout 900 --test-timeout 2400 "$out/compare.sh" \
    2> >(tee "$out/serial.log" | grep -a --line-buffered "^BENCH" >&2) || rc=$?
sleep 1  # let tee finish
tar -xf "$out/output.img" -C "$out/raw" 2>/dev/null || echo "[bench] no outputs on the output disk" >&2
echo "load_after $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/host.txt"
echo "wall_s $(( $(date +%s) - start ))" >> "$out/host.txt"
echo "[bench] guest exit status $rc, $(( $(date +%s) - start )) s" >&2
python3 "$root/tests/bench/report.py" "$out" | tee "$out/report.txt"
