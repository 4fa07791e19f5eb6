# After the cut: the replay drops the clean lines (their copies may be
# stale, see Documentation/design.md rule 6): nothing dirty, nothing to
# write back, the first pass over the region misses and stages it again,
# the second hits; the data is right.
. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 2 read_cache_threshold 4"
field() { dmsetup status w22 | awk -v n=$(($1 + 3)) '{print $n}'; }
hits() { echo $(( $(field 13) + $(field 15) )); }
assert_eq "$(field 7)" 0 "dirty lines after replay"
lw=$(field 6)
dd if=$WB_BACKING of=/tmp/exp bs=1M skip=100 count=2 iflag=direct 2>/dev/null
rr() { fio --name=rr --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=1M --size=2M --direct=1 --ioengine=psync --randrepeat=1 --output=/dev/null; }
run rr
h=$(hits)
[ "$h" -le 4 ] || die "after replay: $h of 512 reads hit clean lines of the log"
run dmsetup message w22 0 clear_stat
run rr
h=$(hits)
[ "$h" -ge 460 ] || die "after replay, second pass: only $h of 512 reads hit"
dd if=/dev/mapper/w22 of=/tmp/got bs=4k skip=256 count=512 iflag=direct 2>/dev/null
cmp /tmp/exp /tmp/got || die "data wrong after replay"
assert_eq "$(field 7)" 0 "dirty lines after the reads"
run dmsetup remove w22 c22 b22
echo "compat22 read cache OK"
