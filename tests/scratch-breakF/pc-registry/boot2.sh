# breakF pc-registry boot 2: the registry survived: resume refuses a wrong
# disk for a device of the same size (id 121 over the disk of 127), then
# works with every written id; data of each as written.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
SZ=$((8 * 2048))
IDS="1 2 3 4 5 6 7 8 9 10 11 12 120 121 122 123 124 125 126 127"
NOTE=$((400 * 256))
N=$(dd if=$WB_BACKING bs=4k skip=$NOTE count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -1)
echo "written: $N"
i=0
for id in $IDS; do run dm_create back$id --table "0 $SZ linear $WB_BACKING $((i * SZ))"; i=$((i + 1)); done
writeboost-dump $WB_CACHE > /tmp/dump 2>&1
grep -i "sectors, identity" /tmp/dump | head -30
for id in $N; do grep -q " $id ($SZ sectors, identity 0x" /tmp/dump || bad "device $id not in the record's registry"; done
run mgr_create
run mgr_msg switch_to 1
# wrong disk for 121 (the disk of 127, same size)
for id in $N; do [ $id = 121 ] || run wb_create wb$id $id /dev/mapper/back$id 0; done
run dm_create wb121 --table "0 $SZ writeboost 121 /dev/mapper/back127 0"
if mgr_msg resume_cache $WB_CACHE; then bad "resume accepted device 121 over another disk"; else klog_tail 2; fi
run dmsetup remove wb121
run wb_create wb121 121 /dev/mapper/back121 0
mgr_msg resume_cache $WB_CACHE || { klog_tail 3; bad "resume refused"; }
for id in $N; do
    wbpattern check /dev/mapper/wb$id --region 0:2M --ops 60 --sizes 4K,64K --seed $id >/tmp/c 2>&1 || { tail -3 /tmp/c; bad "data of $id"; }
done
run mgr_msg allow_migrate 1
for id in $N; do wait_clean $id 200; done
for id in $N; do wb_set_cache wb$id 0 || bad "detach $id"; dmsetup remove wb$id; done
for id in $N; do
    wbpattern check /dev/mapper/back$id --region 0:2M --ops 60 --sizes 4K,64K --seed $id >/tmp/c 2>&1 || { tail -3 /tmp/c; bad "backing data of $id"; }
done
run mgr_msg free_cache
[ $F = 0 ] || die "$F findings"
echo "pc-registry OK"
