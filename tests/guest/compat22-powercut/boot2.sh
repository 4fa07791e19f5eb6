# After the cut: the same table replays the private cache's log (the cache
# device is not formatted again); every flushed write reads back, and
# drop_caches puts it on the backing disk.
. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22"
dmesg | grep -q "formatted as a private cache" && die "the cache device was formatted again"
field() { dmsetup status w22 | awk -v n=$(($1 + 3)) '{print $n}'; }
dirty=$(field 7)
[ "$dirty" -ge 512 ] || die "replay found only $dirty dirty lines"
dd if=$WB_BACKING of=/tmp/exp bs=1M skip=100 count=2 iflag=direct 2>/dev/null
dd if=/dev/mapper/w22 of=/tmp/got bs=4k skip=256 count=512 iflag=direct 2>/dev/null
cmp /tmp/exp /tmp/got || die "flushed data lost or stale after the power cut"
run dmsetup message w22 0 drop_caches
assert_eq "$(field 7)" 0 "dirty lines after drop_caches"
dd if=/dev/mapper/b22 of=/tmp/back bs=4k skip=256 count=512 iflag=direct 2>/dev/null
cmp /tmp/exp /tmp/back || die "backing disk wrong after drop_caches"
run dmsetup remove w22 c22 b22
echo "compat22 power cut OK"
