# breakF: 9 devices on one cache, ids 1 2 3 63 64 100 125 126 127, each over
# its own 16 MiB dm-linear slice of vda. Dirty data of all of them (fsynced),
# removed with data dirty (claims), free_cache, resume with none / some
# devices missing (refused, nothing changed), resume with all (bound, data
# right), free/resume cycles with new data each round, wrong ids, then
# write-back of every id through the backing file table and a check of the
# backing slices themselves.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
IDS="1 2 3 63 64 100 125 126 127"
SZ=$((16 * 2048))
P=wbpattern
R=0:2M
OPS="--ops 100 --sizes 4K,64K"
i=0
for id in $IDS; do
    run dm_create back$id --table "0 $SZ linear $WB_BACKING $((i * SZ))"
    i=$((i + 1))
done
run cache_setup
for id in $IDS; do run wb_create wb$id $id /dev/mapper/back$id 1; done

# wrong ids
refused_table bad0 "0 $SZ writeboost 0 /dev/mapper/back1 0" "device_id"
refused_table bad128 "0 $SZ writeboost 128 /dev/mapper/back1 0" "device_id"
refused_table bad255 "0 $SZ writeboost 255 /dev/mapper/back1 0" "device_id"
refused_table badneg "0 $SZ writeboost -1 /dev/mapper/back1 0" "device_id"
refused_table badcid "0 $SZ writeboost 5 $WB_BACKING 128" "cache_id"
must_fail mgr_msg switch_to 128
must_fail mgr_msg migrate_threshold 128 50
must_fail mgr_msg migrate_threshold 0 50
run mgr_msg migrate_threshold 127 50
assert_eq "$(cat $WB_SYSFS/devices/127/migrate_threshold)" 50 "threshold of 127"
run mgr_msg switch_to 1

round() {  # round <n>: write a stream with gen-base n*100000 on every device
    for id in $IDS; do
        $P write /dev/mapper/wb$id --region $R $OPS --seed $id --gen-base $(($1 * 100000)) --fsync-every 50 > /tmp/w$id || bad "write wb$id round $1"
    done
}
checkall() {  # checkall <n> <dev prefix> <what>
    for id in $IDS; do
        $P check $2$id --region $R $OPS --seed $id --gen-base $(($1 * 100000)) > /tmp/c$id 2>&1 || { tail -3 /tmp/c$id; bad "$3: check of device $id round $1"; }
    done
}
round 1
checkall 1 /dev/mapper/wb "after writes"
for id in $IDS; do
    d=$(cat $WB_SYSFS/devices/$id/nr_dirty_caches)
    [ "$d" -gt 0 ] || echo "NOTE: device $id has no dirty lines after the writes"
done
dmsetup status writeboost-mgr | grep nr_dirty

for n in 2 3 4; do
    echo "=== cycle $n"
    for id in $IDS; do eval "D$id=$(cat $WB_SYSFS/devices/$id/nr_dirty_caches)"; done
    echo "dirty: $(for id in $IDS; do eval "echo -n \"$id:\$D$id \""; done)"
    for id in $IDS; do dmsetup remove wb$id || bad "remove wb$id"; done
    # claims: device 5 over back127 is refused, as is any other table
    must_fail dm_create x5 --table "0 $SZ writeboost 5 /dev/mapper/back127 0"
    dmsetup info x5 >/dev/null 2>&1 && dmsetup remove x5
    must_fail dm_create x126 --table "0 $SZ writeboost 126 /dev/mapper/back127 0"
    dmsetup info x126 >/dev/null 2>&1 && dmsetup remove x126
    run mgr_msg switch_to 1
    mgr_msg free_cache || bad "free_cache (cycle $n)"
    [ ! -e $WB_SYSFS/caches/1 ] || bad "cache 1 still in sysfs after free_cache"
    writeboost-dump $WB_CACHE > /tmp/d0 2>&1
    # none present
    if mgr_msg resume_cache $WB_CACHE; then bad "resume with no devices accepted"; mgr_msg free_cache; fi
    klog_tail 2
    # all but 127
    for id in $IDS; do [ $id = 127 ] || run wb_create wb$id $id /dev/mapper/back$id 0; done
    if [ $D127 -gt 0 ]; then
        if mgr_msg resume_cache $WB_CACHE; then bad "resume without device 127 accepted"; mgr_msg free_cache; fi
        klog_tail 2 | grep -q "device_id 127 owns $D127 dirty lines" || { klog_tail 3; bad "refusal does not name device 127 with $D127 lines"; }
    fi
    # all but 1
    run wb_create wb127 127 /dev/mapper/back127 0
    run dmsetup remove wb1
    if [ $D1 -gt 0 ]; then
        if mgr_msg resume_cache $WB_CACHE; then bad "resume without device 1 accepted"; mgr_msg free_cache; fi
        klog_tail 2 | grep -q "device_id 1 owns $D1 dirty lines" || { klog_tail 3; bad "refusal does not name device 1 with $D1 lines"; }
    fi
    writeboost-dump $WB_CACHE > /tmp/d1 2>&1
    cmp -s /tmp/d0 /tmp/d1 || { diff /tmp/d0 /tmp/d1 | head; bad "refused resumes changed the cache device"; }
    run wb_create wb1 1 /dev/mapper/back1 0
    mgr_msg resume_cache $WB_CACHE || { klog_tail 3; bad "resume with all devices refused (cycle $n)"; }
    for id in $IDS; do
        c=$(dmsetup status wb$id | cut -d' ' -f4-5)
        eval "d=\$D$id"
        if [ $d -gt 0 ]; then [ "$c" = "cache_id 1" ] || bad "device $id not bound after resume ($c)"; fi
        assert_eq "$(cat $WB_SYSFS/devices/$id/nr_dirty_caches)" $d "dirty lines of $id after resume"
    done
    checkall $((n - 1)) /dev/mapper/wb "after resume (cycle $n)"
    # attach (table says so) and write the next round
    for id in $IDS; do wb_set_cache wb$id 1 || bad "attach wb$id"; done
    round $n
    checkall $n /dev/mapper/wb "after round $n"
done

echo "=== write-back of every id"
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
run mgr_msg flush_current_buffer
for id in $IDS; do wait_clean $id 300; done
for id in $IDS; do wb_set_cache wb$id 0 || bad "detach wb$id"; done
for id in $IDS; do dmsetup remove wb$id || bad "remove wb$id"; done
checkall 4 /dev/mapper/back "backing slices after write-back"
run mgr_msg free_cache
dmesg | grep -iE "warn|bug|oops" | head
[ $F = 0 ] || die "$F findings"
echo "many-ids OK"
