# Read caching and write_around_mode together (2.2 form), then a power cut:
# a block read into a clean line (made durable), written through the cache
# (a write-around write of a block with a clean line), written around the
# cache (its drop logged, not flushed), power cut. Boot 2: the device must
# read what the backing disk holds when nothing is dirty, and a block's
# value must not change without a write (drop_caches, remove and re-create).
# The module before replayed the clean line (the old data) over the data
# the write-around write had put on the disk.
. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
mkfill A 4096 /tmp/A; mkfill B 4096 /tmp/B; mkfill C 4096 /tmp/C
run dd if=/tmp/A of=/dev/mapper/b22 bs=4k seek=100 oflag=direct conv=fsync 2>/dev/null
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 6 writeback_threshold 0 read_cache_threshold 4 write_around_mode 1"
field() { dmsetup status w22 | awk -v n=$(($1 + 3)) '{print $n}'; }
hits() { echo $(( $(field 13) + $(field 15) )); }
run dd if=/dev/mapper/w22 of=/dev/null bs=4k skip=100 count=1 iflag=direct 2>/dev/null
run dmsetup message w22 0 clear_stat
run dd if=/dev/mapper/w22 of=/dev/null bs=4k skip=100 count=1 iflag=direct 2>/dev/null
assert_eq "$(hits)" 1 "block 100 read into a clean line"
# The clean line on the cache device (suspend writes the RAM buffer).
run dmsetup suspend w22
run dmsetup resume w22
run dd if=/tmp/B of=/dev/mapper/w22 bs=4k seek=100 oflag=direct 2>/dev/null
assert_eq "$(field 7)" 1 "dirty lines after writing a block with a clean line"
run dd if=/tmp/C of=/dev/mapper/w22 bs=4k seek=100 oflag=direct 2>/dev/null
assert_eq "$(field 7)" 0 "dirty lines after writing it around the cache"
read_blocks /dev/mapper/b22 100 1 /tmp/r
cmp -s /tmp/r /tmp/C || die "the write-around write is not on the backing disk: $(sector_summary /tmp/r)"
wb_powercut
