# The dm-writeboost 2.2 table form: a private cache on a fresh (zeroed
# first sector) and on a replayed cache device, options in any order and
# case, bad options refused with their message, `dmsetup table` and
# `dmsetup status` field by field, clear_stat then one 4 KiB write and its
# read-back changing exactly their two counters, writes of more than the
# cache holds with background write-back off (urgent write-back makes
# room), drop_caches after suspend;resume, a reload reusing the live cache,
# devices shared with other caches refused, removal releasing both devices
# at once, sync_data_interval and writeback_threshold acting, drop_caches
# failing on a failing backing disk and working at once when it is back,
# the printed table loading again. Small
# devices: a 6 MiB cache over a 24 MiB backing.
. /wb/tests/lib.sh
set -e

run dm_create c22 --table "0 $((6 * 2048)) linear $WB_CACHE 0"
run dm_create d22 --table "0 $((6 * 2048)) linear $WB_CACHE $((8 * 2048))"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dm_create e22 --table "0 $((8 * 2048)) linear $WB_BACKING $((32 * 2048))"
CD=/dev/mapper/c22
BD=/dev/mapper/b22
sz=$((24 * 2048))
cdev=$(dmsetup info -c --noheadings -o major,minor c22 | tr -d ' ')
bdev=$(dmsetup info -c --noheadings -o major,minor b22 | tr -d ' ')
run dd if=/dev/zero of=$CD bs=512 count=1 oflag=direct 2>/dev/null

# Field <n> (1-based) of the status line of w22.
field() { dmsetup status w22 | awk -v n=$(($1 + 3)) '{print $n}'; }

bad() {
    # bad "<opt args>" "<expected message part>"
    refused_table w22 "0 $sz writeboost $BD $CD $1" "$2"
}

# 1. Bad options (every bad option is tested on the host; a representative
# set here shows the messages reach the user).
bad "x" "invalid <#opt args> 'x'"
bad "3 writeback_threshold 1 x" "must be an even number"
bad "16" "must be an even number"
bad "2" "<#opt args> is 2 but 0 arguments follow"
bad "2 foo 1" "unknown optional argument 'foo' (known: .* nr_read_cache_cells)"
bad "2 writeback_threshold 101" "invalid writeback_threshold '101'"
bad "2 nr_max_batched_writeback 0" "invalid nr_max_batched_writeback '0'"
bad "2 sync_data_interval 3601" "invalid sync_data_interval '3601'"
bad "2 update_sb_record_interval -1" "invalid update_sb_record_interval '-1'"
bad "2 nr_read_cache_cells 2049" "invalid nr_read_cache_cells '2049'"
bad "2 read_cache_threshold 128" "invalid read_cache_threshold '128'"
bad "2 write_around_mode 2" "invalid write_around_mode '2'"
bad "4 writeback_threshold 1 WRITEBACK_THRESHOLD 2" "writeback_threshold given twice"
must_fail dmsetup create w22 --table "0 $sz writeboost $BD"
klog_tail 2 | grep -q "expected <backing path> <cache path>" || die "no usage message for one argument"
printf '0 8 writeboost %s %s\n8 8 writeboost %s %s\n' $BD $CD $BD $CD | must_fail dmsetup create w22
klog_tail 3 | grep -q "two targets of one table use the same private cache" || die "no message for two targets on one cache"
printf '0 8 writeboost %s %s\n8 8 writeboost /dev/mapper/e22 /dev/mapper/d22\n' $BD $CD | must_fail dmsetup create w22
klog_tail 3 | grep -q "a table can hold one 2.2-form writeboost target only" || die "no message for two 2.2 targets in one table"
# (Its first target formatted the cache device: zero it again.)
run dd if=/dev/zero of=$CD bs=512 count=1 oflag=direct 2>/dev/null
# A cache device holding something else (its first sector not zeroed) is
# refused, with the 2.2 way to have it formatted.
run dd if=/dev/urandom of=/dev/mapper/d22 bs=4k count=1 oflag=direct 2>/dev/null
must_fail dmsetup create w22 --table "0 $sz writeboost $BD /dev/mapper/d22"
klog_tail 3 | grep -q "not a usable writeboost cache: .*(zero its first sector to have it formatted)" || die "no clear message for a cache device holding something else"
must_fail dmsetup create w22 --table "0 $sz writeboost $BD $BD"
klog_tail 2 | grep -q "the backing and the cache device are the same" || die "no message for backing = cache"

# 2. A fresh cache (first sector zeroed) with every option, mixed case, in
# an odd order: the table shows them as given.
opts="14 Sync_Data_Interval 0 nr_read_cache_cells 7 WRITEBACK_THRESHOLD 0 write_around_mode 0 update_sb_record_interval 3600 read_cache_threshold 0 nr_max_batched_writeback 3"
run dm_create w22 --table "0 $sz writeboost $BD $CD $opts"
dmesg | tail -n 5 | grep -q "formatted as a private cache" || die "fresh cache not formatted"
assert_eq "$(dmsetup table w22)" "0 $sz writeboost $bdev $cdev $(echo "$opts" | tr 'A-Z' 'a-z')" "table line"
st=$(dmsetup status w22); echo "$st"
assert_eq "$(echo "$st" | awk '{print NF}')" 38 "fields of the status line (3 + 35)"
echo "$st" | cut -d' ' -f4-27 | grep -Eq '^[0-9]+( [0-9]+){23}$' || die "the first 24 fields are not integers"
nseg=$(field 3)
assert_eq "$(field 2)" $((nseg * 255)) "number of cache lines = segments x 255"
assert_eq "$(field 7)" 0 "dirty lines of a fresh cache"
assert_eq "$(field 25)" 10 "count of the tunables' words"
assert_eq "$(echo "$st" | cut -d' ' -f29-)" "writeback_threshold 0 nr_cur_batched_writeback 3 sync_data_interval 0 update_sb_record_interval 3600 read_cache_threshold 0" "tunables of the status line"
# Not the manager's: no writeboost-mgr, no caches/ in sysfs.
dmsetup info writeboost-mgr >/dev/null 2>&1 && die "a manager exists"
[ -z "$(ls $WB_SYSFS/caches 2>/dev/null)" ] || die "the private cache appears in caches/"

# writeboost-status shows it with its status parsed into named fields.
js=$(writeboost-status --json); echo "$js" | head -c 600; echo
echo "$js" | grep -q '"name": "w22"' || die "writeboost-status --json: no w22"
echo "$js" | grep -q "\"nr_cache_blocks\": $((nseg * 255))" || die "writeboost-status --json: nr_cache_blocks"
echo "$js" | grep -q '"update_sb_record_interval": 3600' || die "writeboost-status --json: tunables"
writeboost-status | grep -q "w22 (/dev/mapper/w22, $(dmsetup info -c --noheadings -o major,minor w22 | tr -d ' ')), dm-writeboost 2.2 form" || die "writeboost-status: no w22"

# 3. Messages.
run dmsetup message w22 0 writeback_threshold 70
run dmsetup message w22 0 NR_MAX_BATCHED_WRITEBACK 32
run dmsetup message w22 0 sync_data_interval 1
run dmsetup message w22 0 update_sb_record_interval 2
run dmsetup message w22 0 read_cache_threshold 0
assert_eq "$(field 27) $(field 29) $(field 31) $(field 33)" "70 32 1 2" "tunables after messages"
must_fail dmsetup message w22 0 writeback_threshold 101
must_fail dmsetup message w22 0 read_cache_threshold 128
klog_tail 1 | grep -q "read_cache_threshold" || die "no message for read_cache_threshold 128"
must_fail dmsetup message w22 0 write_around_mode 0
klog_tail 1 | grep -q "fixed when the table is loaded" || die "no message for write_around_mode"
must_fail dmsetup message w22 0 foo
must_fail dmsetup message w22 0 clear_stat 1
klog_tail 1 | grep -q "clear_stat takes no argument" || die "no message for clear_stat 1"
run dmsetup message w22 0 writeback_threshold 0
# sync_data_interval 1: a 4 KiB write reaches the cache device within
# about a second (the idle seal would take 5 s).
lf=$(field 5)
run dd if=/dev/urandom of=/dev/mapper/w22 bs=4k seek=3000 count=1 oflag=direct 2>/dev/null
sleep 2.5
[ "$(field 5)" -gt "$lf" ] || die "sync_data_interval 1: the RAM buffer was not written within 2.5 s"
run dmsetup message w22 0 sync_data_interval 0

# 4. clear_stat, one 4 KiB write, its read-back: exactly two counters move
# (write, miss, full size: index 9; read, hit, on the RAM buffer, full
# size: index 7).
dd if=/dev/urandom of=/tmp/blk bs=4k count=1 2>/dev/null
run dmsetup message w22 0 clear_stat
c0=$(dmsetup status w22 | cut -d' ' -f11-27)
assert_eq "$c0" "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0" "counters and partial flushes after clear_stat"
run dd if=/tmp/blk of=/dev/mapper/w22 bs=4k seek=1000 count=1 oflag=direct 2>/dev/null
dd if=/dev/mapper/w22 of=/tmp/blk.r bs=4k skip=1000 count=1 iflag=direct 2>/dev/null
cmp /tmp/blk /tmp/blk.r || die "4 KiB read-back differs"
c1=$(dmsetup status w22 | cut -d' ' -f11-26)
assert_eq "$c1" "0 0 0 0 0 0 0 1 0 1 0 0 0 0 0 0" "the 16 counters after one 4 KiB write and its read-back"

# 5. 512 B up to more than the cache holds, with background write-back off
# (threshold 0): urgent write-back makes room; everything reads back.
dd if=/dev/urandom of=/tmp/big bs=1M count=20 2>/dev/null
run dd if=/tmp/big of=/dev/mapper/w22 bs=1M count=20 oflag=direct 2>/dev/null
dd if=/dev/urandom of=/tmp/s512 bs=512 count=1 2>/dev/null
run dd if=/tmp/s512 of=/dev/mapper/w22 bs=512 seek=4097 count=1 oflag=direct 2>/dev/null
dd if=/tmp/s512 of=/tmp/big bs=512 seek=4097 conv=notrunc 2>/dev/null
dd if=/dev/mapper/w22 of=/tmp/big.r bs=1M count=20 iflag=direct 2>/dev/null
cmp /tmp/big /tmp/big.r || die "20 MiB read-back differs"
[ "$(field 6)" -ge 1 ] || die "nothing written back although more than the cache was written"
[ "$(field 7)" -gt 0 ] || die "no dirty lines left (background write-back should be off)"

# 6. suspend; resume; drop_caches: nothing dirty, the backing device holds it.
run dmsetup suspend w22
run dmsetup resume w22
run dmsetup message w22 0 drop_caches
assert_eq "$(field 7)" 0 "dirty lines after drop_caches"
dd if=$BD of=/tmp/big.b bs=1M count=20 iflag=direct 2>/dev/null
cmp /tmp/big /tmp/big.b || die "backing device after drop_caches differs"

# 7. A reload with the same devices reuses the live cache (its data stays
# readable); its options take effect at resume; a reload with another cache
# device is refused.
echo "0 $sz writeboost $BD $CD 2 writeback_threshold 50" | run dmsetup load w22
run dmsetup suspend w22
run dmsetup resume w22
assert_eq "$(field 27)" 50 "writeback_threshold of the reloaded table"
assert_eq "$(dmsetup table w22)" "0 $sz writeboost $bdev $cdev 2 writeback_threshold 50" "table after the reload"
# The table as printed (devices as major:minor) loads again as it is.
dmsetup table w22 > /tmp/t22
run dmsetup load w22 /tmp/t22
run dmsetup suspend w22
run dmsetup resume w22
assert_eq "$(dmsetup table w22)" "$(cat /tmp/t22)" "table after loading the printed table"
echo "0 $sz writeboost $BD /dev/mapper/d22" | must_fail dmsetup load w22
klog_tail 2 | grep -q "a reload cannot change them" || die "no message for a reload with another cache"
run dmsetup message w22 0 writeback_threshold 0
sleep 2
dd if=/dev/urandom of=/tmp/r1 bs=4k count=64 2>/dev/null
run dd if=/tmp/r1 of=/dev/mapper/w22 bs=4k seek=2000 oflag=direct 2>/dev/null
dd if=/tmp/r1 of=/tmp/big bs=4k seek=2000 conv=notrunc 2>/dev/null
dirty=$(field 7)
[ "$dirty" -gt 0 ] || die "no dirty lines before the removal"
dd if=/dev/mapper/w22 of=/tmp/r1.r bs=4k skip=2000 count=64 iflag=direct 2>/dev/null
cmp /tmp/r1 /tmp/r1.r || die "data written after the reload differs"
dd if=/dev/mapper/w22 of=/tmp/big.r bs=1M count=20 iflag=direct 2>/dev/null
cmp /tmp/big /tmp/big.r || die "data written before the reload differs"

# 8. Devices of a private cache, or of a 2013 cache, are refused to others.
echo "+ (must fail) a second device on the same cache device"
dmsetup create x22 --table "0 8192 writeboost /dev/mapper/e22 $CD" 2>/dev/null && die "cache device shared"
klog_tail 2 | grep -q "is the private cache device of writeboost device" || die "no message for a shared private cache"
dmsetup create x22 --table "0 8192 writeboost $BD /dev/mapper/d22" 2>/dev/null && die "backing device shared"
klog_tail 2 | grep -q "is the backing device of writeboost device" || die "no message for a shared backing device"
dmsetup create x13 --table "0 8192 writeboost 1 $BD 0" 2>/dev/null && die "2013 device over a private backing device"
klog_tail 2 | grep -q "is the backing device of writeboost device" || die "no message for a 2013 device over its backing"
run mgr_create
run mgr_msg format_cache_device /dev/mapper/d22
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/d22
dmsetup create x22 --table "0 8192 writeboost /dev/mapper/e22 /dev/mapper/d22" 2>/dev/null && die "a 2013 cache's device used as a private cache"
klog_tail 2 | grep -q "is the cache device of cache 1 (writeboost-mgr)" || die "no message for a 2013 cache's device"
run mgr_msg free_cache
run dmsetup remove writeboost-mgr

# 9. Remove (dirty data stays in the log), create again: the log is replayed.
run dmsetup remove w22
run dm_create w22 --table "0 $sz writeboost $BD $CD"
dmesg | tail -n 5 | grep -q "formatted as a private cache" && die "a used cache was formatted again"
assert_eq "$(field 7)" "$dirty" "dirty lines after the replay"
dd if=/dev/mapper/w22 of=/tmp/r1.r bs=4k skip=2000 count=64 iflag=direct 2>/dev/null
cmp /tmp/r1 /tmp/r1.r || die "data after the replay differs"
dd if=/dev/mapper/w22 of=/tmp/big.r bs=1M count=8 iflag=direct 2>/dev/null
dd if=/tmp/big of=/tmp/big8 bs=1M count=8 2>/dev/null
cmp /tmp/big8 /tmp/big.r || die "older data after the replay differs"

# 10. writeback_threshold 100: background write-back runs while the disk
# is idle and writes everything back. Then removal releases both devices
# at once: exclusive opens succeed.
run dmsetup message w22 0 writeback_threshold 100
run dmsetup message w22 0 sync_data_interval 1
i=0
while [ "$(field 7)" != 0 ]; do
    i=$((i + 1))
    [ $i -lt 60 ] || die "background write-back with writeback_threshold 100: $(field 7) dirty lines left after 30 s"
    sleep 0.5
done
# drop_caches while the backing disk fails ends with an error; once the
# disk is back, the next drop_caches retries at once (not after the
# write-back's back-off) and writes everything back.
run dmsetup message w22 0 writeback_threshold 0
run dd if=/tmp/r1 of=/dev/mapper/w22 bs=4k seek=2000 oflag=direct 2>/dev/null
run dmsetup load b22 --table "0 $sz error"
run dmsetup suspend b22
run dmsetup resume b22
must_fail dmsetup message w22 0 drop_caches
klog_tail 2 | grep -q "drop_caches: write-back to the backing device fails" || die "no message for drop_caches on a failing disk"
run dmsetup load b22 --table "0 $sz linear $WB_BACKING 0"
run dmsetup suspend b22
run dmsetup resume b22
run dmsetup message w22 0 drop_caches
assert_eq "$(field 7)" 0 "dirty lines after drop_caches once the disk is back"
run dmsetup message w22 0 drop_caches
run dmsetup remove w22
run mgr_create
run mgr_msg format_cache_device $CD
run dm_create x13 --table "0 8192 writeboost 1 $BD 0"
run dmsetup remove x13
run dmsetup remove writeboost-mgr
dd if=$BD of=/tmp/r1.b bs=4k skip=2000 count=64 iflag=direct 2>/dev/null
cmp /tmp/r1 /tmp/r1.b || die "backing device after the last drop_caches differs"
run dmsetup remove c22 d22 b22 e22
echo "compat22: ok"
