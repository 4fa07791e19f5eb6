# The 2.2 table form across a power cut: a private cache on a fresh cache
# device, 2 MiB written and flushed (reference copy beyond the device on
# the disk), unflushed writes elsewhere, then the cut.
. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 2 writeback_threshold 0"
dd if=/dev/urandom of=/tmp/d1 bs=1M count=2 2>/dev/null
run dd if=/tmp/d1 of=$WB_BACKING bs=1M seek=100 oflag=direct conv=fsync 2>/dev/null
run dd if=/tmp/d1 of=/dev/mapper/w22 bs=4k seek=256 oflag=direct conv=fsync 2>/dev/null
dd if=/dev/urandom of=/dev/mapper/w22 bs=4k seek=2048 count=100 oflag=direct 2>/dev/null
wb_powercut
