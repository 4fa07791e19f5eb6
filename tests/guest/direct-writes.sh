# Direct writes (superblock version 5): writes of 64 KiB and more go from
# the bio straight to their lines' place on the cache device. They read
# back before and after their segments are written, small writes into a
# direct line of the open segment (in place, also 512 B) and an O_DSYNC
# write into one read back too, the segments on disk carry direct
# lines and pass writeboost-check, a second resume replays them, write-back
# puts the data on the backing disk, and a cache device failing writes
# fails a direct write with EIO (no hang), reads of its sectors fail
# rather than return the slot's older bytes, and the cache stops taking
# writes.
. /wb/tests/lib.sh
set -e
csize=$((32 * 2048))
size=$((256 * 2048))
run mgr_create
run dm_create fcache --table "0 $csize linear $WB_CACHE 0"
run mgr_msg format_cache_device /dev/mapper/fcache
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run wb_create wb1 1 $WB_BACKING 1 $size
dd if=/dev/urandom of=/tmp/d bs=1M count=4 2>/dev/null
dd if=/dev/urandom of=/tmp/s bs=4k count=4 2>/dev/null

# 4 MiB in 1 MiB writes at 8 MiB, not flushed.
run dd if=/tmp/d of=/dev/mapper/wb1 bs=1M seek=8 oflag=direct 2>/dev/null
dd if=/dev/mapper/wb1 bs=1M skip=8 count=4 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/d /tmp/got || die "1 MiB direct writes do not read back before their segments are written"

# A fresh open segment: 64 KiB at 64 MiB (16 direct lines), then in place:
# 4 KiB at +8 KiB, 512 B at +20.5 KiB, and an O_DSYNC 4 KiB at +32 KiB
# (FUA, or a write and a flush, as the block layer sends it).
run mgr_msg flush_current_buffer
head -c 65536 /tmp/d > /tmp/e
run dd if=/tmp/e of=/dev/mapper/wb1 bs=64k seek=1024 oflag=direct 2>/dev/null
run dd if=/tmp/s of=/dev/mapper/wb1 bs=4k count=1 seek=$((16384 + 2)) oflag=direct 2>/dev/null
dd if=/tmp/s of=/tmp/e bs=4k count=1 seek=2 conv=notrunc 2>/dev/null
run dd if=/tmp/s of=/dev/mapper/wb1 bs=512 skip=8 count=1 seek=$((131072 + 41)) oflag=direct 2>/dev/null
dd if=/tmp/s of=/tmp/e bs=512 skip=8 count=1 seek=41 conv=notrunc 2>/dev/null
run xfs_io -d -c "pwrite -q -D -i /tmp/s -s 8192 $(( (16384 + 8) * 4096 )) 4096" /dev/mapper/wb1
dd if=/tmp/s of=/tmp/e bs=4k skip=2 count=1 seek=8 conv=notrunc 2>/dev/null
check_all() {
    run dd if=/dev/mapper/wb1 bs=1M skip=8 count=4 iflag=direct of=/tmp/got
    cmp /tmp/d /tmp/got || die "the 1 MiB direct writes do not read back $1"
    run dd if=/dev/mapper/wb1 bs=64k skip=1024 count=1 iflag=direct of=/tmp/got
    cmp /tmp/e /tmp/got || die "the 64 KiB direct write and the writes into it do not read back $1"
}
check_all "from the open segment"
run mgr_msg flush_current_buffer
check_all "from the cache device"

# On disk: segments with direct lines, all valid.
run dmsetup remove wb1
run mgr_msg free_cache
writeboost-dump /dev/mapper/fcache > /tmp/dump
cat /tmp/dump | head -20
grep -q "format v5" /tmp/dump || die "a new cache is not superblock version 5"
direct=$(awk '/in log/ && $6 ~ /^[0-9]+$/ { n += $6 } END { print n + 0 }' /tmp/dump)
echo "direct lines in the log: $direct"
[ "$direct" -ge 1000 ] || die "only $direct direct lines on disk: large writes did not go direct"
run writeboost-check /dev/mapper/fcache

# A second resume replays them; write-back puts them on the backing disk.
run wb_create wb1 1 $WB_BACKING 0 $size
run mgr_msg resume_cache /dev/mapper/fcache
run wb_set_cache wb1 1
check_all "after a resume"
run mgr_msg allow_migrate 1
wait_clean 1
check_all "after write-back"
dd if=$WB_BACKING bs=1M skip=8 count=4 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/d /tmp/got || die "the backing disk does not hold the 1 MiB writes after write-back"
dd if=$WB_BACKING bs=64k skip=1024 count=1 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/e /tmp/got || die "the backing disk does not hold the 64 KiB region after write-back"
run mgr_msg allow_migrate 0

# The cache device fails writes (reads still work: dm-flakey, always
# down, error_writes): a direct write fails with EIO, reads of its sectors
# fail too (they are not on the cache device: the slot holds older bytes),
# and so do later writes (the cache stopped taking them); nothing hangs.
echo "0 $csize flakey $WB_CACHE 0 0 3600 1 error_writes" | dmsetup load fcache
run dmsetup suspend --noflush fcache
run dmsetup resume fcache
if dd if=/tmp/d of=/dev/mapper/wb1 bs=1M count=1 seek=32 oflag=direct 2>/dev/null; then
    die "a direct write to a failed cache device succeeded"
fi
mgr_msg flush_current_buffer || true
i=0
until dmesg | grep -q "direct write to the cache device failed"; do
    i=$((i + 1)); [ $i -le 50 ] || die "no log line for the failed direct write"; sleep 0.2
done
# What was in RAM (the remainder line of the 1 MiB write) goes straight to
# the backing device, as after a failed segment write.
i=0
until dmesg | grep -q "straight to the backing devices"; do
    i=$((i + 1)); [ $i -le 50 ] || die "no log line for writing the RAM buffers back"; sleep 0.2
done
if dd if=/dev/mapper/wb1 bs=1M skip=32 count=1 iflag=direct of=/tmp/got 2>/dev/null; then
    die "a read of the failed direct write's sectors succeeded (it read the slot's older contents)"
fi
dd if=/dev/mapper/wb1 bs=1M skip=40 count=1 iflag=direct of=/dev/null 2>/dev/null || die "a read of uncached data failed"
if dd if=/tmp/s of=/dev/mapper/wb1 bs=4k count=1 seek=20000 oflag=direct conv=fsync 2>/dev/null; then
    die "a write after the failed direct write succeeded"
fi
st=$(dmsetup status writeboost-mgr); echo "$st"
assert_contains "$st" "error: -5" "status shows the cache error"
run dmsetup remove wb1
echo "0 $csize linear $WB_CACHE 0" | dmsetup load fcache
run dmsetup suspend --noflush fcache
run dmsetup resume fcache
must_fail mgr_msg free_cache
run dmsetup remove writeboost-mgr 2>/dev/null || true
echo "direct writes OK"
