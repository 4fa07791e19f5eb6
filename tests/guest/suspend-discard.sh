# Suspend flushes the RAM buffer; discards drop cached dirty data so it is
# never migrated over the discarded range.
. /wb/tests/lib.sh
set -e
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((64 * 2048))
run dd if=/dev/urandom of=/dev/mapper/wb1 bs=4k count=100 oflag=direct 2>/dev/null
lf0=$(mgr_status_value last_flushed_segment_id)
run dmsetup suspend wb1
lf1=$(mgr_status_value last_flushed_segment_id)
[ "$lf1" -gt "$lf0" ] || die "suspend did not flush the RAM buffer ($lf0 -> $lf1)"
run dmsetup resume wb1
# Discard: dirty lines of the range are dropped.
run dd if=/dev/urandom of=/dev/mapper/wb1 bs=4k seek=1000 count=256 oflag=direct 2>/dev/null
d0=$(cat $WB_SYSFS/devices/1/nr_dirty_caches)
run blkdiscard -o $((1000 * 4096)) -l $((256 * 4096)) /dev/mapper/wb1
d1=$(cat $WB_SYSFS/devices/1/nr_dirty_caches)
assert_eq "$((d0 - d1))" "256" "dirty lines dropped by the discard"
run mgr_msg allow_migrate 1
run mgr_msg flush_current_buffer
wait_clean 1
dd if=$WB_BACKING bs=4k skip=1000 count=256 iflag=direct of=/tmp/got 2>/dev/null
dd if=/dev/zero bs=4k count=256 of=/tmp/zero 2>/dev/null
cmp /tmp/zero /tmp/got || die "discarded range received migrated data"
echo "suspend and discard OK"
