# breakF: the record written by the module's commit_record (registry sizes
# and identities from its heap scratch) read by the offline tools: devices
# 1, 64, 127 with fsynced dirty data, commit_super_block, removed, cache
# freed, module unloaded; writeboost-recover with a wrong map (127 -> disk
# of 64) must refuse on identity; with the right map it writes every line
# back; then a resume replays nothing.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
SZ=$((16 * 2048))
IDS="1 64 127"
i=0
for id in $IDS; do run dm_create back$id --table "0 $SZ linear $WB_BACKING $((i * SZ))"; i=$((i + 1)); done
run cache_setup
for id in $IDS; do run wb_create wb$id $id /dev/mapper/back$id 1; done
for id in $IDS; do run wbpattern write /dev/mapper/wb$id --region 0:6M --ops 200 --sizes 512,4K,64K,256K --seed $id --fsync-every 200; done
run mgr_msg commit_super_block
for id in $IDS; do run dmsetup remove wb$id; done
run mgr_msg free_cache
run dmsetup remove writeboost-mgr
run rmmod dm_writeboost
writeboost-dump $WB_CACHE | grep -i "registered" | head -3
writeboost-recover $WB_CACHE --map 1=/dev/mapper/back1 --map 64=/dev/mapper/back64 --map 127=/dev/mapper/back64 > /tmp/r 2>&1 && bad "recover with 127 mapped to the disk of 64 accepted"
tail -3 /tmp/r
writeboost-recover $WB_CACHE --map 1=/dev/mapper/back1 --map 64=/dev/mapper/back64 > /tmp/r 2>&1 && bad "recover without a map for 127 accepted"
tail -3 /tmp/r
writeboost-recover $WB_CACHE --map 1=/dev/mapper/back1 --map 64=/dev/mapper/back64 --map 127=/dev/mapper/back127 > /tmp/r 2>&1 || { tail -5 /tmp/r; bad "recover refused"; }
tail -3 /tmp/r
for id in $IDS; do
    wbpattern check /dev/mapper/back$id --region 0:6M --ops 200 --sizes 512,4K,64K,256K --seed $id >/tmp/c 2>&1 || { tail -3 /tmp/c; bad "backing data of $id after recover"; }
done
writeboost-check $WB_CACHE 2>&1 | tail -3
run insmod /wb/dm-writeboost.ko
run mgr_create
run mgr_msg switch_to 1
mgr_msg resume_cache $WB_CACHE || { klog_tail 3; bad "resume after recover (no device needed) refused"; }
mgr_status_value nr_dirty_caches
[ "$(mgr_status_value nr_dirty_caches)" = 0 ] || bad "dirty lines after recover"
wb_teardown_all
[ $F = 0 ] || die "$F findings"
echo "recover-ids OK"
