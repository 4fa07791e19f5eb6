# I/O errors are reported, never retried forever in the I/O path, and
# dirty data is never dropped: a failing backing device stalls migration
# (retried with backoff, its lines parked) until it recovers; a failing cache device fails
# writes with EIO while reads keep working.
. /wb/tests/lib.sh
set -e
size=$((64 * 2048))
run dm_create back --table "0 $size linear $WB_BACKING 0"
run cache_setup
run wb_create wb1 1 /dev/mapper/back 1
dd if=/dev/urandom of=/tmp/d bs=1M count=4 2>/dev/null
run dd if=/tmp/d of=/dev/mapper/wb1 bs=4k oflag=direct conv=fsync 2>/dev/null
# The backing device starts failing every I/O.
echo "0 $size error" | dmsetup load back
run dmsetup suspend --noflush back
run dmsetup resume back
run mgr_msg allow_migrate 1
run mgr_msg flush_current_buffer
sleep 4
dirty=$(cat $WB_SYSFS/devices/1/nr_dirty_caches)
assert_eq "$dirty" "1024" "dirty lines kept while the backing device fails"
dmesg | grep -q "device_id 1: write-back to its backing device failed" || die "no log line for the failed migration"
# Reads of cached data still work.
dd if=/dev/mapper/wb1 bs=4k count=1024 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/d /tmp/got || die "reads from the cache failed while the backing device is down"
# The backing device recovers: migration completes.
echo "0 $size linear $WB_BACKING 0" | dmsetup load back
run dmsetup suspend --noflush back
run dmsetup resume back
wait_clean 1 60
dd if=$WB_BACKING bs=4k count=1024 iflag=direct of=/tmp/back 2>/dev/null
cmp /tmp/d /tmp/back || die "backing data wrong after recovery"
run dmsetup remove wb1
run mgr_msg free_cache

# Cache device failure: writes fail with an error (no hang), reads work.
csize=$((16 * 2048))
run dm_create fcache --table "0 $csize linear $WB_CACHE 0"
run mgr_msg format_cache_device /dev/mapper/fcache
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/fcache
run wb_create wb2 2 /dev/mapper/back 2
run dd if=/tmp/d of=/dev/mapper/wb2 bs=4k count=16 oflag=direct conv=fsync 2>/dev/null
# Acknowledged, not flushed: only in the RAM buffer.
run dd if=/tmp/d of=/dev/mapper/wb2 bs=4k skip=100 seek=100 count=64 oflag=direct 2>/dev/null
echo "0 $csize error" | dmsetup load fcache
run dmsetup suspend --noflush fcache
run dmsetup resume fcache
if dd if=/tmp/d of=/dev/mapper/wb2 bs=4k count=300 oflag=direct conv=fsync 2>/dev/null; then
    die "writes through a failed cache device succeeded"
fi
dmesg | grep -q "writing segment" || die "no log line for the failed segment write"
# What was still in the RAM buffers went straight to the backing device.
i=0
until dmesg | grep -q "straight to the backing devices"; do
    i=$((i + 1)); [ $i -le 50 ] || die "no log line for writing the RAM buffers back"; sleep 0.2
done
for r in "0 16" "100 64"; do
    set -- $r
    dd if=/dev/mapper/back bs=4k skip=$1 count=$2 iflag=direct of=/tmp/b 2>/dev/null
    dd if=/tmp/d bs=4k skip=$1 count=$2 of=/tmp/e 2>/dev/null
    cmp -s /tmp/b /tmp/e || die "blocks $1+$2 still in RAM did not reach the backing device"
done
st=$(dmsetup status writeboost-mgr); echo "$st"
assert_contains "$st" "error: -5" "status shows the cache error"
# Data written before the failure is still readable (from RAM).
dd if=/dev/mapper/wb2 bs=4k count=16 iflag=direct of=/tmp/got2 2>/dev/null
dd if=/tmp/d bs=4k count=16 of=/tmp/exp2 2>/dev/null
cmp /tmp/exp2 /tmp/got2 || die "data written before the failure is unreadable"
run dmsetup remove wb2
echo "0 $csize linear $WB_CACHE 0" | dmsetup load fcache
run dmsetup suspend --noflush fcache
run dmsetup resume fcache
must_fail mgr_msg free_cache
run dmsetup remove writeboost-mgr 2>/dev/null || true
echo "io errors OK"
