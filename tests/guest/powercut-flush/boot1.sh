# Power cut after FLUSH: write known data, fsync, overwrite part of it,
# fsync again, leave unflushed writes behind, and cut the power.
. /wb/tests/lib.sh
set -e
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((256 * 2048))
dd if=/dev/urandom of=/tmp/d1 bs=1M count=8 2>/dev/null
dd if=/dev/urandom of=/tmp/d4 bs=1M count=4 2>/dev/null
# Reference copies, beyond the device's 256 MiB, straight to the disk.
run dd if=/tmp/d1 of=$WB_BACKING bs=1M seek=400 oflag=direct conv=fsync 2>/dev/null
run dd if=/tmp/d4 of=$WB_BACKING bs=1M seek=410 oflag=direct conv=fsync 2>/dev/null
# Region A (8 MiB at 8 MiB) in 4 KiB writes, flushed.
run dd if=/tmp/d1 of=/dev/mapper/wb1 bs=4k seek=2048 oflag=direct conv=fsync 2>/dev/null
# Its first half overwritten in 64 KiB writes, flushed.
run dd if=/tmp/d4 of=/dev/mapper/wb1 bs=64k seek=128 oflag=direct conv=fsync 2>/dev/null
# Unflushed writes elsewhere, then the cut.
dd if=/dev/urandom of=/dev/mapper/wb1 bs=4k seek=16384 count=300 oflag=direct 2>/dev/null
wb_powercut
