# After the cut: create the device (cache 0), resume the cache (replay),
# and check every flushed write; then drain and check the backing disk.
. /wb/tests/lib.sh
set -e
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 $((256 * 2048))
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
assert_eq "$(cat $WB_SYSFS/devices/1/cache_id)" "1" "device bound to the cache by resume"
dirty=$(cat $WB_SYSFS/devices/1/nr_dirty_caches)
[ "$dirty" -ge 2048 ] || die "replay found only $dirty dirty lines"
dd if=$WB_BACKING bs=1M skip=410 count=4 iflag=direct of=/tmp/exp 2>/dev/null
dd if=$WB_BACKING bs=1M skip=404 count=4 iflag=direct of=/tmp/exp2 2>/dev/null
cat /tmp/exp2 >> /tmp/exp
dd if=/dev/mapper/wb1 bs=1M skip=8 count=8 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/exp /tmp/got || die "flushed data lost or stale after the power cut"
# Drain and check the backing disk alone.
run mgr_msg allow_migrate 1
wait_clean 1
dd if=$WB_BACKING bs=1M skip=8 count=8 iflag=direct of=/tmp/back 2>/dev/null
cmp /tmp/exp /tmp/back || die "backing disk wrong after draining the replayed log"
echo "powercut after flush OK"
