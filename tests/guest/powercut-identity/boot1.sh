# The registry identifies a backing disk by more than its size. Boot 1:
# device 7 over disk A (one of two dm-linear disks of the same size) gets
# 64 flushed dirty lines, is removed with plain `dmsetup remove`, and the
# power is cut.
. /wb/tests/lib.sh
set -e
run cache_setup
sz=$((16 * 2048))
run dm_create backA --table "0 $sz linear $WB_BACKING 0"
run dm_create backB --table "0 $sz linear $WB_BACKING $sz"
run wb_create wb7 7 /dev/mapper/backA 1
run dd if=/dev/urandom of=/tmp/data bs=4k count=64 2>/dev/null
run dd if=/tmp/data of=/dev/mapper/wb7 bs=4k count=64 seek=100 oflag=direct conv=fsync 2>/dev/null
# Reference copy beyond the two disks.
run dd if=/tmp/data of=$WB_BACKING bs=4k count=64 seek=$((400 * 256)) oflag=direct conv=fsync 2>/dev/null
assert_eq "$(cat $WB_SYSFS/devices/7/nr_dirty_caches)" 64 "dirty lines of device 7"
run dmsetup remove wb7
wb_powercut
