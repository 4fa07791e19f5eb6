# breakF pc-registry boot 1: the record's registry (sizes and identities,
# built in the record writer's heap scratch) under churn: devices 1..12 and
# 120..127 come and go, each writing fsynced data once; commit_super_block
# messages run in a loop throughout (and sysfs commits); the power is cut
# in the middle of the churn. The ids written so far are noted on vda.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
SZ=$((8 * 2048))
IDS="1 2 3 4 5 6 7 8 9 10 11 12 120 121 122 123 124 125 126 127"
NOTE=$((400 * 256))
i=0
for id in $IDS; do run dm_create back$id --table "0 $SZ linear $WB_BACKING $((i * SZ))"; i=$((i + 1)); done
run cache_setup
( while :; do dmsetup message writeboost-mgr 0 commit_super_block; echo 1 > $WB_SYSFS/caches/1/commit_super_block; done ) >/dev/null 2>&1 &
done_ids=""
for id in $IDS; do
    wb_create wb$id $id /dev/mapper/back$id 1 || bad "create $id"
    wbpattern write /dev/mapper/wb$id --region 0:2M --ops 60 --sizes 4K,64K --seed $id --fsync-every 60 >/dev/null || bad "write $id"
    done_ids="$done_ids $id"
    echo "$done_ids" > /tmp/n
    dd if=/tmp/n of=$WB_BACKING bs=4k seek=$NOTE count=1 conv=sync,fsync oflag=direct 2>/dev/null
    # every other device is removed (its data stays, claimed)
    [ $((id % 2)) = 0 ] && { dmsetup remove wb$id || bad "remove $id"; }
    [ $id = 122 ] && break
done
writeboost-dump $WB_CACHE 2>&1 | grep -i "registry\|sectors, identity" | head -30
[ $F = 0 ] || die "$F findings"
wb_powercut
