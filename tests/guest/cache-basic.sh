# The cache end to end: format, resume, attach by table, writes acknowledged
# from RAM and read back from RAM, from the cache device and after
# migration from the backing device; status fields; free_cache.
. /wb/tests/lib.sh
set -e
dd if=/dev/urandom of=/tmp/data bs=1M count=8 2>/dev/null

run mgr_create
run mgr_msg format_cache_device $WB_CACHE
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
st=$(dmsetup status writeboost-mgr); echo "$st"
assert_contains "$st" "current cache_id_ptr: 1" "status after resume"
assert_contains "$st" "nr_segments: 127" "nr_segments of a 128 MiB cache"
[ -d $WB_SYSFS/caches/1 ] || die "caches/1 missing in sysfs"
# The index's memory as the module allocated it (line table + buckets):
# the same figure in status and sysfs, at most 16 bytes per cache line.
ib=$(mgr_status_value index_bytes)
assert_eq "$(cat $WB_SYSFS/caches/1/index_bytes)" "$ib" "caches/1/index_bytes"
lines=$((127 * 255))
echo "index: $ib bytes for $lines lines"
[ "${ib:-0}" -ge $((12 * lines)) ] && [ "$ib" -le $((16 * lines)) ] || die "index_bytes $ib for $lines lines: not within 12..16 bytes per line"

size=$(sectors_of $WB_BACKING)
run dm_create wb1 --table "0 $size writeboost 1 $WB_BACKING 1"
assert_eq "$(dmsetup table wb1)" "0 $size writeboost 1 $(cat /sys/block/vda/dev) 1" "table of an attached device"
run dmsetup message wb1 0 add_sysfs
assert_eq "$(cat $WB_SYSFS/devices/1/cache_id)" "1" "devices/1/cache_id"

# Read caching: off by default; the manager's tunable turns it on (a 4 KiB
# read miss becomes a clean line, not dirty), then off again.
assert_eq "$(mgr_status_value read_cache_threshold)" 0 "read caching off by default"
run dd if=/dev/mapper/wb1 of=/dev/null bs=4k skip=100 count=1 iflag=direct 2>/dev/null
assert_eq "$(mgr_status_value nr_clean_caches)" 0 "clean lines with read caching off"
run mgr_msg read_cache_threshold 4
assert_eq "$(mgr_status_value read_cache_threshold)" 4 "read_cache_threshold after the message"
run dd if=/dev/mapper/wb1 of=/dev/null bs=4k skip=100 count=1 iflag=direct 2>/dev/null
assert_eq "$(mgr_status_value nr_clean_caches)" 1 "a read miss staged as a clean line"
assert_eq "$(cat $WB_SYSFS/devices/1/nr_dirty_caches)" 0 "a clean line is not dirty"
must_fail mgr_msg read_cache_threshold 128
run mgr_msg read_cache_threshold 0

# 8 MiB of 4 KiB writes land in the cache (write-back: backing untouched).
run dd if=/tmp/data of=/dev/mapper/wb1 bs=4k seek=256 oflag=direct 2>/dev/null
dirty=$(cat $WB_SYSFS/devices/1/nr_dirty_caches)
assert_eq "$dirty" "2048" "dirty lines after 8 MiB of writes"
dd if=$WB_BACKING bs=4k skip=256 count=2048 iflag=direct of=/tmp/back 2>/dev/null
cmp -s /tmp/data /tmp/back && die "data reached the backing device although migration is off"
# Read back (partly from RAM buffers, partly from the cache device).
dd if=/dev/mapper/wb1 bs=4k skip=256 count=2048 iflag=direct of=/tmp/front 2>/dev/null
cmp /tmp/data /tmp/front || die "read back through the cache differs"
# Sub-4K unaligned overwrite, read back.
dd if=/dev/urandom of=/tmp/small bs=512 count=3 2>/dev/null
run dd if=/tmp/small of=/dev/mapper/wb1 bs=512 seek=$((256 * 8 + 5)) oflag=direct 2>/dev/null
dd if=/tmp/small of=/tmp/data bs=512 seek=5 conv=notrunc 2>/dev/null
dd if=/dev/mapper/wb1 bs=4k skip=256 count=2048 iflag=direct of=/tmp/front 2>/dev/null
cmp /tmp/data /tmp/front || die "read back after a partial overwrite differs"

# FLUSH: everything acknowledged is on the cache device afterwards.
run sync
run dd if=/tmp/small of=/dev/mapper/wb1 bs=512 count=1 seek=1 oflag=direct conv=fsync 2>/dev/null
st=$(dmsetup status writeboost-mgr); echo "$st"
lf=$(echo "$st" | sed -n 's/^last_flushed_segment_id: //p')
cur=$(echo "$st" | sed -n 's/^current segment id: //p')
[ "$lf" -ge 1 ] || die "nothing flushed after fsync (last_flushed=$lf)"

# Detaching with dirty data is refused; the device stays attached.
echo "0 $size writeboost 1 $WB_BACKING 0" | dmsetup load wb1 && die "detach with dirty data accepted"
klog_tail 3 | grep -q "dirty lines" || die "no clear message for detach with dirty data"
run dmsetup clear wb1

# Migrate everything, then detach and check the backing device alone.
run mgr_msg allow_migrate 1
run mgr_msg flush_current_buffer
i=0
while [ "$(cat $WB_SYSFS/devices/1/nr_dirty_caches)" != 0 ]; do
    i=$((i + 1)); [ $i -lt 120 ] || die "migration did not finish: $(cat $WB_SYSFS/devices/1/nr_dirty_caches) dirty"
    sleep 1
done
dd if=$WB_BACKING bs=4k skip=256 count=2048 iflag=direct of=/tmp/back 2>/dev/null
cmp /tmp/data /tmp/back || die "backing device differs after migration"
echo "0 $size writeboost 1 $WB_BACKING 0" | dmsetup load wb1 || die "detach after draining refused"
run dmsetup suspend wb1
run dmsetup resume wb1
assert_eq "$(cat $WB_SYSFS/devices/1/cache_id)" "0" "cache_id after detach"
dd if=/dev/mapper/wb1 bs=4k skip=256 count=2048 iflag=direct of=/tmp/front 2>/dev/null
cmp /tmp/data /tmp/front || die "read after detach differs"

# free_cache refuses while a device is attached, then works.
echo "0 $size writeboost 1 $WB_BACKING 1" | dmsetup load wb1 && run dmsetup suspend wb1 && run dmsetup resume wb1
must_fail mgr_msg free_cache
klog_tail 3 | grep -q "still serves" || die "no clear message for free_cache with devices"
run dmsetup remove wb1
run mgr_msg free_cache
[ -d $WB_SYSFS/caches/1 ] && die "caches/1 still in sysfs after free_cache"
run dmsetup remove writeboost-mgr
echo "cache basic OK"
