# writeboost-recover, boot 1: two devices share one cache; random writes of
# 512 B .. 64 KiB (overwrites, partial 4 KiB blocks: 512-byte dirty masks),
# all flushed; 64 KiB more not flushed; migration off, so everything is
# dirty in the cache when the power is cut. Boot 2 has no module.
. /wb/tests/lib.sh
set -e
mb=2048
run cache_setup
# Four dm-linear disks of 12 MiB (the last 8 sectors smaller); boot 2
# creates them again under the same names (the identity the record holds).
run dm_create back1 --table "0 $((12 * mb)) linear $WB_BACKING 0"
run dm_create back2 --table "0 $((12 * mb)) linear $WB_BACKING $((12 * mb))"
run dm_create back3 --table "0 $((12 * mb)) linear $WB_BACKING $((24 * mb))"
run dm_create back4 --table "0 $((12 * mb - 8)) linear $WB_BACKING $((36 * mb))"
run wb_create wb1 1 /dev/mapper/back1 1
run wb_create wb2 2 /dev/mapper/back2 1
wbpattern write /dev/mapper/wb1 --region 0:8M --ops 300 --seed 1 --sizes 512,4K,64K --fsync-every 50 > /tmp/w1
wbpattern write /dev/mapper/wb2 --region 0:8M --ops 300 --seed 2 --sizes 512,4K,64K --fsync-every 50 > /tmp/w2
assert_eq "$(tail -n 1 /tmp/w1) $(tail -n 1 /tmp/w2)" "done 300 done 300" "writers finished"
grep -q "^flushed 300$" /tmp/w1 && grep -q "^flushed 300$" /tmp/w2 || die "the last writes were not flushed"
# Not flushed: may or may not survive. Its data is kept on the raw disk.
dd if=/dev/urandom of=/tmp/u bs=4k count=16 2>/dev/null
run dd if=/tmp/u of=$WB_BACKING bs=4k seek=$((400 * 256)) oflag=direct conv=fsync 2>/dev/null
run dd if=/tmp/u of=/dev/mapper/wb2 bs=4k seek=$((8 * 256)) oflag=direct 2>/dev/null
d1=$(cat $WB_SYSFS/devices/1/nr_dirty_caches)
d2=$(cat $WB_SYSFS/devices/2/nr_dirty_caches)
echo "dirty lines: device 1 $d1, device 2 $d2"
[ "$d1" -gt 200 ] && [ "$d2" -gt 200 ] || die "too little dirty data"
wb_powercut
