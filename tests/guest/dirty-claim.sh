# A backing disk holding dirty data of a removed device stays that device's:
# the cache claims it exclusively, so a table of another device_id over it
# is refused (naming the cache and the device_id that holds the data) and so
# is any other table; the same device_id gets its data back, writes it back,
# and then any device may use the disk.
. /wb/tests/lib.sh
set -e
run cache_setup
sz=$((16 * 2048))
run dm_create back --table "0 $sz linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/back bs=1M count=16 oflag=direct 2>/dev/null
run wb_create wb7 7 /dev/mapper/back 1
run dd if=/dev/urandom of=/tmp/data bs=4k count=64 2>/dev/null
run dd if=/tmp/data of=/dev/mapper/wb7 bs=4k count=64 seek=100 oflag=direct conv=fsync 2>/dev/null
assert_eq "$(cat $WB_SYSFS/devices/7/nr_dirty_caches)" 64 "dirty lines of device 7"
# Plain remove: the 64 lines stay dirty in cache 1.
run dmsetup remove wb7
dmesg | grep -q "cache 1: claimed backing device .*: removed device_id 7 has 64 dirty lines" \
    || die "the cache did not claim the removed device's disk"
for cid in 1 0; do
    must_fail dm_create wb8 --table "0 $sz writeboost 8 /dev/mapper/back $cid"
    klog_tail 3 | grep -q "busy (cache 1 claims disk .* for removed device_id 7, whose data it holds: create device_id 7 over it)" \
        || { klog_tail 3; die "no clear refusal of device_id 8 (cache_id $cid)"; }
done
dmsetup info wb8 >/dev/null 2>&1 && dmsetup remove wb8
# No other table (or file system) may open the claimed disk either.
must_fail dm_create other --table "0 $sz linear /dev/mapper/back 0"
dmsetup info other >/dev/null 2>&1 && dmsetup remove other
# Device 7 again (pass-through table): it gets its data through the cache.
run wb_create wb7 7 /dev/mapper/back 0
dd if=/dev/mapper/wb7 of=/tmp/r bs=4k count=64 skip=100 iflag=direct 2>/dev/null
cmp -s /tmp/data /tmp/r || die "device 7 re-created does not read its dirty data"
run mgr_msg allow_migrate 1
wait_clean 7
dmesg | grep -q "device_id 7 is written back: its backing device is released" || true
run dmsetup remove wb7
# Written back: device 8 over the disk is accepted and sees the data.
run wb_create wb8 8 /dev/mapper/back 1
dd if=/dev/mapper/wb8 of=/tmp/r bs=4k count=64 skip=100 iflag=direct 2>/dev/null
cmp -s /tmp/data /tmp/r || die "device 8 does not read the written-back data"
run dmsetup remove wb8
echo "dirty claim OK"
