# A writeboost device with cache_id 0 passes reads, writes, flushes and
# discards to the backing device at the right offset, also when the target
# does not start at sector 0 of its table.
. /wb/tests/lib.sh
set -e

# Random data, 4 MiB.
dd if=/dev/urandom of=/tmp/data bs=1M count=4 2>/dev/null

# 1. Whole-device table.
size=$(sectors_of $WB_BACKING)
run dm_create wb1 --table "0 $size writeboost 1 $WB_BACKING 0"
run dd if=/tmp/data of=/dev/mapper/wb1 bs=64k seek=16 oflag=direct conv=fsync 2>/dev/null
dd if=$WB_BACKING bs=64k skip=16 count=64 iflag=direct of=/tmp/back 2>/dev/null
cmp /tmp/data /tmp/back || die "data written through wb1 is not on the backing device at the same offset"
dd if=/dev/mapper/wb1 bs=64k skip=16 count=64 iflag=direct of=/tmp/front 2>/dev/null
cmp /tmp/data /tmp/front || die "data read through wb1 differs"
table=$(dmsetup table wb1)
# The backing device is printed as maj:min of vda.
majmin=$(cat /sys/block/vda/dev)
assert_eq "$table" "0 $size writeboost 1 $majmin 0" "dmsetup table wb1"

# Flushes reach the backing device: its flush counter (field 16
# of the stats file: flushes completed) increases after an fsync.
f0=$(awk '{print $16}' /sys/block/vda/stat)
run dd if=/tmp/data of=/dev/mapper/wb1 bs=4k count=1 seek=100 oflag=direct conv=fsync 2>/dev/null
f1=$(awk '{print $16}' /sys/block/vda/stat)
[ "$f1" -gt "$f0" ] || die "fsync on wb1 did not flush the backing device ($f0 -> $f1)"

# Discards reach the backing device (the image file punches holes: zeros).
run blkdiscard -o $((16 * 65536)) -l $((1024 * 1024)) /dev/mapper/wb1
dd if=$WB_BACKING bs=64k skip=16 count=16 iflag=direct of=/tmp/disc 2>/dev/null
dd if=/dev/zero bs=64k count=16 of=/tmp/zero 2>/dev/null
cmp /tmp/disc /tmp/zero || die "discarded range still holds data on the backing device"
# The rest of the written data is untouched.
dd if=$WB_BACKING bs=64k skip=32 count=48 iflag=direct of=/tmp/back2 2>/dev/null
dd if=/tmp/data bs=64k skip=16 count=48 of=/tmp/data2 2>/dev/null
cmp /tmp/data2 /tmp/back2 || die "discard touched data outside its range"

# A reload with the printed table works (the table can be cloned).
dmsetup table wb1 | dmsetup load wb1 || die "reloading wb1 with its own table failed"
run dmsetup suspend wb1
run dmsetup resume wb1
run dmsetup remove wb1

# 2. Target not at sector 0: linear for the first 2048 sectors, then
# writeboost mapping its sector 0 to backing sector 0.
half=$((size / 2))
printf '0 2048 zero\n2048 %s writeboost 2 %s 0\n' "$half" "$WB_BACKING" | dmsetup create wb2 || die "create wb2"
dmsetup mknodes wb2
# Write at wb2 sector 2048 + 8192 -> backing sector 8192.
run dd if=/tmp/data of=/dev/mapper/wb2 bs=512 seek=$((2048 + 8192)) count=2048 oflag=direct 2>/dev/null
dd if=$WB_BACKING bs=512 skip=8192 count=2048 iflag=direct of=/tmp/back3 2>/dev/null
dd if=/tmp/data bs=512 count=2048 of=/tmp/data3 2>/dev/null
cmp /tmp/data3 /tmp/back3 || die "offset target: data not at backing sector 8192"
run dmsetup remove wb2

# The module cannot be unloaded while a target uses it.
run dm_create wb3 --table "0 8 writeboost 3 $WB_BACKING 0"
must_fail rmmod dm_writeboost
run dmsetup remove wb3
echo "passthrough OK"
