# Read caching in the 2.2 form (read_cache_threshold): 4 KiB read misses
# become clean lines; a second read of the region hits; a sequential run
# longer than the threshold is not cached; a write to a cached block wins;
# off caches nothing. Then a power cut (boot2: the clean lines replay).
. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
# The data is on the backing disk before the cache exists (reference copy
# beyond the device, for boot 2).
dd if=/dev/urandom of=/tmp/d1 bs=1M count=2 2>/dev/null
run dd if=/tmp/d1 of=/dev/mapper/b22 bs=1M seek=1 oflag=direct conv=fsync 2>/dev/null
run dd if=/tmp/d1 of=$WB_BACKING bs=1M seek=100 oflag=direct conv=fsync 2>/dev/null
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 6 writeback_threshold 0 read_cache_threshold 4 nr_read_cache_cells 64"
field() { dmsetup status w22 | awk -v n=$(($1 + 3)) '{print $n}'; }
# Read hits, full size: counters write=0 hit=1 fullsize=1 (on buffer or
# not), i.e. counters 5 and 7, fields 8 + 5 and 8 + 7.
hits() { echo $(( $(field 13) + $(field 15) )); }
assert_eq "$(dmsetup status w22 | awk '{print $NF}')" 4 "read_cache_threshold in the status"
assert_eq "$(dmsetup table w22 | grep -c 'read_cache_threshold 4 nr_read_cache_cells 64')" 1 "table"
rr() { fio --name=rr --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=$1 --size=$2 --direct=1 --ioengine=psync --randrepeat=1 --output=/dev/null; }
# Off: nothing staged.
run dmsetup message w22 0 read_cache_threshold 0
run rr 12M 1M
run dmsetup message w22 0 clear_stat
run rr 12M 1M
assert_eq "$(hits)" 0 "hits with read caching off"
run dmsetup message w22 0 read_cache_threshold 4
# A write to a cached block: its data is read back.
run dd if=/dev/mapper/w22 of=/dev/null bs=4k skip=4096 count=1 iflag=direct 2>/dev/null
run dmsetup message w22 0 clear_stat
run dd if=/dev/mapper/w22 of=/dev/null bs=4k skip=4096 count=1 iflag=direct 2>/dev/null
assert_eq "$(hits)" 1 "a single 4 KiB read is cached"
dd if=/dev/urandom of=/tmp/w bs=4k count=1 2>/dev/null
run dd if=/tmp/w of=/dev/mapper/w22 bs=4k seek=4096 oflag=direct conv=fsync 2>/dev/null
dd if=/dev/mapper/w22 of=/tmp/r bs=4k skip=4096 count=1 iflag=direct 2>/dev/null
cmp /tmp/w /tmp/r || die "a write to a cached block is not read back"
assert_eq "$(field 7)" 1 "the written block is dirty"
run dmsetup message w22 0 drop_caches
assert_eq "$(field 7)" 0 "dirty lines after drop_caches"
dd if=/dev/mapper/b22 of=/tmp/r bs=4k skip=4096 count=1 iflag=direct 2>/dev/null
cmp /tmp/w /tmp/r || die "the write is not written back"
# Random 4 KiB reads of the 2 MiB region (each block once): staged.
run rr 1M 2M
run dmsetup message w22 0 clear_stat
run rr 1M 2M
h=$(hits)
[ "$h" -ge 460 ] || die "second read of 512 blocks: only $h hits"
assert_eq "$(field 7)" 0 "dirty lines after reads"
dd if=/dev/mapper/w22 of=/tmp/got bs=4k skip=256 count=512 iflag=direct 2>/dev/null
cmp /tmp/d1 /tmp/got || die "read-cached data differs"
# A sequential run longer than the threshold is not cached (at most its
# first 4 blocks are).
run dmsetup message w22 0 clear_stat
run dd if=/dev/mapper/w22 of=/dev/null bs=4k skip=2048 count=64 iflag=direct 2>/dev/null
run dmsetup message w22 0 clear_stat
run dd if=/dev/mapper/w22 of=/dev/null bs=4k skip=2048 count=64 iflag=direct 2>/dev/null
h=$(hits)
[ "$h" -le 4 ] || die "sequential run cached: $h hits"
# The clean lines on the cache device (suspend writes the RAM buffer),
# nothing dirty, then the cut.
run dmsetup suspend w22
run dmsetup resume w22
assert_eq "$(field 7)" 0 "dirty lines before the cut"
wb_powercut
