# Side-by-side benchmark, run in one guest boot (scripts/bench.sh).
# vda: slow disk (HDD-like IOPS), vdb: fast disk (random writes much slower
# than sequential ones). Prints "BENCH <name> <value> <unit>" lines.
. /wb/tests/lib.sh
RUNTIME=${BENCH_RUNTIME:-10}
WS=${BENCH_WS:-32M}

iops() {
    # iops <device> [extra fio args]: 4 KiB random writes, direct, libaio, qd 32.
    _dev=$1; shift
    # A missing /dev/mapper node would silently become a tmpfs file.
    [ -b "$_dev" ] || { echo "failed"; return; }
    fio --name=b --filename=$_dev --rw=randwrite --bs=4k --direct=1 --ioengine=libaio \
        --iodepth=32 --size=$WS --time_based --runtime=$RUNTIME --randrepeat=0 "$@" \
        --output=/tmp/fio.out >/dev/null 2>&1
    sed -n 's/.*write: IOPS=\([0-9.k]*\).*/\1/p' /tmp/fio.out | head -1 | \
        awk '{ v=$1; if (v ~ /k$/) { sub(/k$/, "", v); v = v * 1000 } printf "%d\n", v }'
}
zap_fast() { dd if=/dev/zero of=$WB_CACHE bs=1M count=4 oflag=direct 2>/dev/null; }

echo "BENCH config runtime=${RUNTIME}s working_set=$WS"
echo "BENCH raw_slow $(iops $WB_BACKING) IOPS"
echo "BENCH raw_fast $(iops $WB_CACHE --offset=64M) IOPS"
fio --name=s --filename=$WB_CACHE --rw=write --bs=1M --direct=1 --ioengine=libaio --iodepth=4 \
    --size=96M --time_based --runtime=$RUNTIME --output=/tmp/seq.out >/dev/null 2>&1
echo "BENCH raw_fast_seq_1M $(sed -n 's/.*write: IOPS=[^,]*, BW=\([0-9.]*\)MiB.*/\1/p' /tmp/seq.out | head -1) MiB/s"

# writeboost
zap_fast
size=$(sectors_of $WB_BACKING)
cache_setup >/dev/null
wb_create wbb 1 $WB_BACKING 1 $size >/dev/null
echo "BENCH writeboost $(iops /dev/mapper/wbb) IOPS"
dmsetup status writeboost-mgr | sed -n 's/^\(last_flushed_segment_id\|last_migrated_segment_id\|nr_partial_flushed\): /BENCH-INFO writeboost \1 /p'
dmsetup remove wbb; mgr_msg free_cache; dmsetup remove writeboost-mgr

# dm-writecache (s mode, 4 KiB blocks)
zap_fast
dmsetup create wc --table "0 $size writecache s $WB_BACKING $WB_CACHE 4096 0" && dmsetup mknodes wc
echo "BENCH dm-writecache $(iops /dev/mapper/wc) IOPS"
dmsetup remove wc

# dm-cache, smq, writeback, 64-sector blocks (metadata: first 8 MiB of vdb)
zap_fast
csz=$(sectors_of $WB_CACHE)
dmsetup create cmeta --table "0 16384 linear $WB_CACHE 0"
dmsetup create cdata --table "0 $((csz - 16384)) linear $WB_CACHE 16384"
dmsetup mknodes
dd if=/dev/zero of=/dev/mapper/cmeta bs=1M count=8 oflag=direct 2>/dev/null
dmsetup create dmc --table "0 $size cache /dev/mapper/cmeta /dev/mapper/cdata $WB_BACKING 64 1 writeback smq 0" && dmsetup mknodes dmc
echo "BENCH dm-cache $(iops /dev/mapper/dmc) IOPS"
dmsetup remove dmc; dmsetup remove cdata; dmsetup remove cmeta

# Sustained: a working set larger than the cache, migration allowed.
zap_fast
cache_setup >/dev/null
mgr_msg allow_migrate 1
mgr_msg nr_max_batched_migration 8
wb_create wbs 1 $WB_BACKING 1 $size >/dev/null
WS=320M
echo "BENCH writeboost_sustained_320M $(iops /dev/mapper/wbs --runtime=$((RUNTIME * 2))) IOPS"
dmsetup status writeboost-mgr | sed -n 's/^\(last_flushed_segment_id\|last_migrated_segment_id\): /BENCH-INFO sustained \1 /p'
dmsetup remove wbs; mgr_msg free_cache; dmsetup remove writeboost-mgr
zap_fast
dmsetup create wcs --table "0 $size writecache s $WB_BACKING $WB_CACHE 4096 0" && dmsetup mknodes wcs
echo "BENCH dm-writecache_sustained_320M $(iops /dev/mapper/wcs --runtime=$((RUNTIME * 2))) IOPS"
dmsetup remove wcs
exit 0
