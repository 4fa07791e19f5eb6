# breakF: registry sizes of device 127 (and 1) through grow / shrink of
# their backing disks between free_cache and resume_cache: a grown disk is
# accepted and its new size registered (record commit from the heap
# scratch), a shrunk one refused, nothing changed; data right.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
S=$((16 * 2048))
run dm_create back127 --table "0 $S linear $WB_BACKING 0"
run dm_create back1 --table "0 $S linear $WB_BACKING $((64 * 2048))"
run cache_setup
run wb_create wb127 127 /dev/mapper/back127 1
run wb_create wb1 1 /dev/mapper/back1 1
for id in 1 127; do run wbpattern write /dev/mapper/wb$id --region 0:8M --ops 200 --sizes 4K,64K --seed $id --fsync-every 200; done
grow() {  # grow <name> <sectors> <offset>
    dmsetup suspend $1 && echo "0 $2 linear $WB_BACKING $3" | dmsetup load $1 && dmsetup resume $1
}
for round in 1 2 3; do
    for id in 1 127; do run dmsetup remove wb$id; done
    run mgr_msg free_cache
    ns=$((S + round * 8 * 2048))
    grow back127 $ns 0 || bad "grow back127"
    grow back1 $ns $((64 * 2048)) || bad "grow back1"
    for id in 1 127; do run wb_create wb$id $id /dev/mapper/back$id 0; done
    mgr_msg resume_cache $WB_CACHE || { klog_tail 3; bad "resume with grown disks (round $round)"; }
    run mgr_msg commit_super_block
    writeboost-dump $WB_CACHE | grep "registered" | head -1
    writeboost-dump $WB_CACHE | grep -q "127 ($ns sectors" || bad "size of 127 not registered as $ns (round $round)"
    writeboost-dump $WB_CACHE | grep -q " 1 ($ns sectors" || bad "size of 1 not registered as $ns (round $round)"
    for id in 1 127; do wbpattern check /dev/mapper/wb$id --region 0:8M --ops 200 --sizes 4K,64K --seed $id >/tmp/c 2>&1 || bad "data of $id (round $round)"; done
done
# shrink 127 below its registered size: refused
for id in 1 127; do run dmsetup remove wb$id; done
run mgr_msg free_cache
grow back127 $S 0
for id in 1 127; do run wb_create wb$id $id /dev/mapper/back$id 0; done
writeboost-dump $WB_CACHE > /tmp/d0 2>&1
mgr_msg resume_cache $WB_CACHE && bad "resume with 127's disk shrunk accepted"
klog_tail 1
writeboost-dump $WB_CACHE > /tmp/d1 2>&1
cmp -s /tmp/d0 /tmp/d1 || bad "refused resume changed the cache device"
run dmsetup remove wb127
grow back127 $((S + 3 * 8 * 2048)) 0
run wb_create wb127 127 /dev/mapper/back127 0
run mgr_msg resume_cache $WB_CACHE
for id in 1 127; do wbpattern check /dev/mapper/wb$id --region 0:8M --ops 200 --sizes 4K,64K --seed $id >/tmp/c 2>&1 || bad "data of $id (end)"; done
wb_teardown_all
[ $F = 0 ] || die "$F findings"
echo "grow-127 OK"
