# breakF: resume_cache's snapshot of present devices vs devices removed or
# re-created while the resume runs, with I/O and record commits going on
# on another cache. Cache 1 (vdb 0..64M): devices 1, 2 under wbpattern
# writers; sysfs commit_super_block / flush loops. Cache 2 (vdb 64M..):
# devices 126, 127 hold flushed dirty data; each round: remove both, free
# cache 2, re-create both (cache 0), resume cache 2 in the background and
# remove (or re-create over another disk) device 126 after a delay.
# After each round: whatever won, the dirty data of 126 must stay claimed
# (no device of another id over its disk) and read back right once
# device 126 exists again.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
SZ=$((32 * 2048))
run dm_create c1 --table "0 $((64 * 2048)) linear $WB_CACHE 0"
run dm_create c2 --table "0 $((64 * 2048)) linear $WB_CACHE $((64 * 2048))"
i=0
for id in 1 2 126 127 9; do run dm_create back$id --table "0 $SZ linear $WB_BACKING $((i * SZ))"; i=$((i + 1)); done
run mgr_create
run mgr_msg format_cache_device /dev/mapper/c1
run mgr_msg format_cache_device /dev/mapper/c2
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/c1
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/c2
for id in 1 2; do run wb_create wb$id $id /dev/mapper/back$id 1; done
for id in 126 127; do run wb_create wb$id $id /dev/mapper/back$id 2; done
for id in 126 127; do
    wbpattern write /dev/mapper/wb$id --region 0:8M --ops 300 --sizes 4K,64K --seed $id --fsync-every 300 >/dev/null || bad "write $id"
done
ck126() {
    wbpattern check /dev/mapper/wb$1 --region 0:8M --ops 300 --sizes 4K,64K --seed $1 >/tmp/c 2>&1 || { tail -3 /tmp/c; bad "$2: data of $1"; }
}
D126=$(cat $WB_SYSFS/devices/126/nr_dirty_caches); echo "dirty of 126: $D126"
# load on cache 1
for id in 1 2; do
    wbpattern write /dev/mapper/wb$id --region 0:16M --ops 4000 --sizes 512,4K,64K,256K --seed $id --fsync-every 20 > /tmp/w$id 2>&1 &
done
( while :; do echo 1 > $WB_SYSFS/caches/1/commit_super_block; echo 1 > $WB_SYSFS/caches/1/flush_current_buffer; cat $WB_SYSFS/caches/*/nr_dirty_caches; done ) >/dev/null 2>&1 &
LOOP=$!
echo 1 > $WB_SYSFS/caches/1/allow_migrate

for n in $(seq 1 16); do
    delay=$(( (n % 8) * 50 ))   # ms
    mode=$(( n % 2 ))           # 0: remove 126; 1: re-create 126 over back9
    dmsetup remove wb126 2>/dev/null; dmsetup remove wb127 2>/dev/null
    mgr_msg free_cache || { klog_tail 2; bad "free cache 2 (round $n)"; }
    run dm_create wb126 --table "0 $SZ writeboost 126 /dev/mapper/back126 0"
    run dm_create wb127 --table "0 $SZ writeboost 127 /dev/mapper/back127 0"
    ( mgr_msg resume_cache /dev/mapper/c2; echo "rc $?" > /tmp/rr ) >/dev/null 2>&1 &
    rm -f /tmp/rr
    usleep $((delay * 1000))
    dmsetup remove wb126 2>/dev/null && removed=1 || removed=0
    if [ $mode = 1 ] && [ $removed = 1 ]; then
        dm_create wb126 --table "0 $SZ writeboost 126 /dev/mapper/back9 0" 2>/dev/null && other=1 || other=0
    else
        other=0
    fi
    wait %2 2>/dev/null
    k=0; while [ ! -e /tmp/rr ]; do k=$((k + 1)); [ $k -lt 120 ] || { bad "resume_cache hangs (round $n)"; break; }; sleep 0.5; done
    rr=$(cat /tmp/rr 2>/dev/null)
    echo "round $n: delay ${delay}ms mode $mode removed=$removed other=$other resume: $rr; $(klog_tail 1)"
    if [ "$rr" = "rc 0" ]; then
        if [ $other = 1 ]; then
            c=$(dmsetup status wb126 | cut -d' ' -f4-5)
            [ "$c" = "cache_id 0" ] || bad "device 126 over another disk bound to cache 2 ($c, round $n)"
            dmsetup remove wb126 || bad "remove 126 over back9 (round $n)"
        fi
        # the disk of 126 must be held for device 126 only
        if dm_create x5 --table "0 $SZ writeboost 5 /dev/mapper/back126 0" 2>/dev/null; then
            bad "round $n: device 5 accepted over the disk of 126, whose dirty data is in cache 2 ($D126 lines)"
            dmesg | grep "claim" | tail -3
            dmsetup remove x5
        fi
        if dm_create xl --table "0 $SZ linear /dev/mapper/back126 0" 2>/dev/null; then
            bad "round $n: a linear table accepted over the disk of 126 (not claimed)"
            dmsetup remove xl
        fi
        run dm_create wb126 --table "0 $SZ writeboost 126 /dev/mapper/back126 0"
        c=$(dmsetup status wb126 | cut -d' ' -f4-5)
        [ "$c" = "cache_id 2" ] || bad "device 126 re-created after the resume not bound ($c, round $n)"
        ck126 126 "round $n"
        ck126 127 "round $n"
    else
        # refused: cache 2 must not exist, and can be resumed with both
        [ ! -e $WB_SYSFS/caches/2 ] || bad "cache 2 in sysfs after a refused resume (round $n)"
        dmsetup remove wb126 2>/dev/null
        run dm_create wb126 --table "0 $SZ writeboost 126 /dev/mapper/back126 0"
        mgr_msg resume_cache /dev/mapper/c2 || { klog_tail 3; bad "resume after a refused one (round $n)"; }
        ck126 126 "round $n (after a refused resume)"
    fi
done
kill $LOOP; wait $LOOP 2>/dev/null
wait
for id in 1 2; do
    tail -1 /tmp/w$id
    wbpattern check /dev/mapper/wb$id --region 0:16M --ops 4000 --sizes 512,4K,64K,256K --seed $id >/tmp/c 2>&1 || { tail -3 /tmp/c; bad "data of $id"; }
done
wb_teardown_all || bad "teardown"
rmmod dm_writeboost || bad "rmmod"
[ $F = 0 ] || die "$F findings"
echo "race OK"
