# Large I/O is not cut into 4 KiB pieces (issue 10): unaligned multi-MiB
# writes and reads through RAM buffers, the cache device and, after
# write-back, the backing device read back exactly; an uncached read
# reaches the backing device in as many requests as on the raw disk.
. /wb/tests/lib.sh
set -e
reads_of() { awk '{ print $1 }' /sys/block/$(basename $1)/stat; }

dd if=/dev/urandom of=/tmp/data bs=1M count=6 2>/dev/null
run cache_setup
size=$(sectors_of $WB_BACKING)
run wb_create wb1 1 $WB_BACKING 1 $size

# 6 MiB at sector 7 of MiB 16 (every block partial at the edges), 1 MiB
# writes; then 3 MiB over the middle at another unaligned place (in-place
# updates of the open segment and new lines mixed).
base=$((16 * 2048 + 7))
# Unaligned 1 MiB bios: dm-linear windows into the device.
run dmsetup create wbwin --table "0 12288 linear /dev/mapper/wb1 $base"
run dmsetup create wbwin2 --table "0 6144 linear /dev/mapper/wb1 $((base + 3000))"
dmsetup mknodes
run dd if=/tmp/data of=/dev/mapper/wbwin bs=1M oflag=direct 2>/dev/null
dd if=/dev/urandom of=/tmp/over bs=1M count=3 2>/dev/null
run dd if=/tmp/over of=/dev/mapper/wbwin2 bs=1M oflag=direct 2>/dev/null
dd if=/tmp/over of=/tmp/data bs=512 seek=3000 conv=notrunc 2>/dev/null
check() {
    dd if=/dev/mapper/wbwin bs=1M iflag=direct of=/tmp/front 2>/dev/null
    cmp /tmp/data /tmp/front || die "6 MiB read back $1 differs"
    # The same range with 1 MiB reads that straddle cached and uncached data.
    dd if=/dev/mapper/wb1 bs=1M skip=15 count=8 iflag=direct of=/tmp/wide 2>/dev/null
    dd if=/tmp/wide of=/tmp/front bs=512 skip=$((2048 + 7)) count=12288 2>/dev/null
    cmp /tmp/data /tmp/front || die "1 MiB reads around the data $1 differ"
}
check "from RAM and the cache device"
run mgr_msg flush_current_buffer
check "from the cache device"
run mgr_msg allow_migrate 1
wait_clean 1
check "after write-back"
# Write-back merged adjacent dirty lines: each dirty sector written once,
# in few large writes (one per 4 KiB block without merging: 1537).
ios=$(mgr_status_value writeback_ios); bytes=$(mgr_status_value writeback_bytes)
echo "write-back: $(mgr_status_value writeback_rounds) rounds, $ios writes, $bytes bytes"
assert_eq "$bytes" "$((12288 * 512))" "bytes written back (each dirty sector once)"
[ "$ios" -le 64 ] || die "write-back was not merged: $ios writes for 6 MiB of sequential data"
dd if=$WB_BACKING bs=512 skip=$base count=12288 iflag=direct of=/tmp/back 2>/dev/null
cmp /tmp/data /tmp/back || die "the backing device does not hold the data after write-back"

# Uncached 1 MiB reads: as many backing requests as the raw disk needs.
r0=$(reads_of $WB_BACKING)
dd if=$WB_BACKING of=/dev/null bs=1M skip=64 count=8 iflag=direct 2>/dev/null
r1=$(reads_of $WB_BACKING)
dd if=/dev/mapper/wb1 of=/dev/null bs=1M skip=72 count=8 iflag=direct 2>/dev/null
r2=$(reads_of $WB_BACKING)
raw=$((r1 - r0)); wb=$((r2 - r1))
echo "uncached 8 MiB read: raw disk $raw requests, through writeboost $wb"
[ $wb -le $((raw * 2)) ] || die "an uncached read was split: $wb backing requests for $raw on the raw disk"
run dmsetup remove wbwin
run dmsetup remove wbwin2
run dmsetup remove wb1
run mgr_msg free_cache
