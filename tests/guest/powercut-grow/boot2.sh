# Boot 2: the slice shrank: refused, nothing changes; then it grew to
# 128 MiB: accepted, data intact, the new size registered.
. /wb/tests/lib.sh
set -e
dd if=$WB_BACKING of=/tmp/data bs=4k count=30 skip=$((400 * 256)) iflag=direct 2>/dev/null
run mgr_create
run dm_create back1 --table "0 $((32 * 2048)) linear $WB_BACKING 0"
run wb_create wb1 1 /dev/mapper/back1 0
run mgr_msg switch_to 1
must_fail mgr_msg resume_cache $WB_CACHE
klog_tail 3 | grep -q "shrunk or wrong backing device" || die "no clear message for the shrunk disk"
run dmsetup remove wb1
run dmsetup load back1 --table "0 $((128 * 2048)) linear $WB_BACKING 0"
run dmsetup suspend back1
run dmsetup resume back1
run wb_create wb1 1 /dev/mapper/back1 0
run mgr_msg resume_cache $WB_CACHE
assert_eq "$(dmsetup status wb1 | cut -d' ' -f4-5)" "cache_id 1" "the device is bound to the cache holding its data"
dd if=/dev/mapper/wb1 of=/tmp/r bs=4k count=30 skip=1000 iflag=direct 2>/dev/null
cmp -s /tmp/data /tmp/r || die "flushed data lost across the growth"
# The record registers the new size (written by the attach at resume).
writeboost-dump $WB_CACHE > /tmp/dump 2>&1 || true
grep -q "$((128 * 2048)) sectors" /tmp/dump || { cat /tmp/dump; die "the record does not show the grown size"; }
run mgr_msg allow_migrate 1
wait_clean 1 || die "not drained"
dd if=$WB_BACKING of=/tmp/b bs=4k count=30 skip=1000 iflag=direct 2>/dev/null
cmp -s /tmp/data /tmp/b || die "drained data not on the backing disk"
echo "grow OK"
