# write_around_mode 1 (2.2 form) over a cache that already holds dirty data
# of the device: written in normal mode, the device removed (the data stays
# in the private cache's log), created again in write-around mode.
# Overwrites drop the cached copies (reads return the new data, the dirty
# count drops); one more write-around write, a FLUSH, then the power cut:
# boot 2 must read the new data, not the older cached copy a replay would
# bring back without the logged drop.
. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
# Background write-back off: the old copies stay in the log past the record.
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 2 writeback_threshold 0"
run wbpattern fill /dev/mapper/w22 --region 0:4M --gen 1
run dmsetup remove w22
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 4 writeback_threshold 0 write_around_mode 1"
dmsetup table w22 | grep -q "write_around_mode 1" || die "table line lost write_around_mode: $(dmsetup table w22)"
field() { dmsetup status w22 | awk -v n=$(($1 + 3)) '{print $n}'; }
assert_eq "$(field 7)" 1024 "dirty lines replayed"
# Overwrite 1 MiB: its 256 cached lines leave the cache.
run wbpattern fill /dev/mapper/w22 --region 1M:1M --gen 2
assert_eq "$(field 7)" 768 "dirty lines after a 1 MiB write-around write"
run wbpattern check /dev/mapper/w22 --region 1M:1M --ops 0 --initial gen:2
run wbpattern check /dev/mapper/w22 --region 0:1M --ops 0 --initial gen:1
run wbpattern check /dev/mapper/b22 --region 1M:1M --ops 0 --initial gen:2
# Counters: one 4 KiB write-around write is one full-size write miss
# (2.2 index write<<3|fullsize = 9, field 8 + 9) and nothing else.
run dmsetup message w22 0 clear_stat
run dd if=/dev/urandom of=/dev/mapper/w22 bs=4k seek=2000 count=1 oflag=direct 2>/dev/null
i=0
while [ $i -lt 16 ]; do
	want=0; [ $i -eq 9 ] && want=1
	assert_eq "$(field $((8 + i)))" $want "counter $i after one write-around write"
	i=$((i + 1))
done
# write_around_mode is fixed: a reload that changes it is refused.
dmsetup load w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 2 writeback_threshold 0" 2>/dev/null \
	&& die "a reload without write_around_mode was accepted"
dmesg | tail -3 | grep -q "write_around_mode is fixed" || die "no clear refusal of the reload: $(dmesg | tail -1)"
# A write-around write over cached data, then FLUSH (fill ends with
# fdatasync), then the cut.
run wbpattern fill /dev/mapper/w22 --region 2M:1M --gen 3
assert_eq "$(field 7)" 512 "dirty lines after the second write-around write"
# An O_DSYNC write-around write over a cached block, no FLUSH after it:
# durable when it completes, its drop included. (The block layer sends it
# as REQ_FUA, or as a write and a FLUSH where the stack does not advertise
# FUA, as here: the module's FUA hold is covered by the engine test
# write_around_fua_waits_for_the_drop and the simulator.)
run wbpattern write /dev/mapper/w22 --region 3M:4K --ops 1 --sizes 4K --align 4K --gen-base 100 --fua
assert_eq "$(field 7)" 511 "dirty lines after the FUA write-around write"
wb_powercut
