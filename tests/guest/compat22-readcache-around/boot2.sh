# See boot1.sh.
. /wb/tests/lib.sh
set -e
mkfill A 4096 /tmp/A; mkfill B 4096 /tmp/B; mkfill C 4096 /tmp/C
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
table="0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 6 writeback_threshold 0 read_cache_threshold 4 write_around_mode 1"
run dm_create w22 --table "$table"
field() { dmsetup status w22 | awk -v n=$(($1 + 3)) '{print $n}'; }
read_blocks /dev/mapper/w22 100 1 /tmp/r1
same_as_one_of /tmp/r1 /tmp/A /tmp/B /tmp/C || die "after the cut block 100 reads $(sector_summary /tmp/r1)"
echo "after the cut: $(sector_summary /tmp/r1), $(field 7) dirty"
if [ "$(field 7)" = 0 ]; then
    read_blocks /dev/mapper/b22 100 1 /tmp/d
    cmp -s /tmp/r1 /tmp/d || die "nothing is dirty, yet block 100 reads $(sector_summary /tmp/r1) while the backing disk holds $(sector_summary /tmp/d)"
fi
run dmsetup message w22 0 drop_caches
read_blocks /dev/mapper/w22 100 1 /tmp/r2
cmp -s /tmp/r1 /tmp/r2 || die "block 100 changed without a write: $(sector_summary /tmp/r1), after drop_caches $(sector_summary /tmp/r2)"
run dmsetup remove w22
run dm_create w22 --table "$table"
read_blocks /dev/mapper/w22 100 1 /tmp/r3
cmp -s /tmp/r1 /tmp/r3 || die "block 100 changed without a write: $(sector_summary /tmp/r1), after remove and re-create $(sector_summary /tmp/r3)"
read_blocks /dev/mapper/b22 100 1 /tmp/d
cmp -s /tmp/r1 /tmp/d || die "after drop_caches the backing disk holds $(sector_summary /tmp/d), the device reads $(sector_summary /tmp/r1)"
run dmsetup remove w22
echo "read caching + write-around + power cut OK"
