# breakF: a device removed while `resume_cache` replays the log (after the
# resume took its snapshot of present devices) is attached inside the
# resume, but at publication the resume finds it gone and leaves its dirty
# data in the cache WITHOUT claiming its backing disk (mgr.rs
# resume_reserved: "None => {}"). Nothing is logged. A plain dm-linear table
# (or a file system) over that disk is then accepted, although the admin
# guide says the cache claims it exclusively; data written and fsynced
# there is later overwritten by the write-back of the stale cached data.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
SZ=$((32 * 2048))
run dm_create c2 --table "0 $((64 * 2048)) linear $WB_CACHE 0"
run dm_create back126 --table "0 $SZ linear $WB_BACKING 0"
run mgr_create
run mgr_msg format_cache_device /dev/mapper/c2
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/c2
run dm_create wb126 --table "0 $SZ writeboost 126 /dev/mapper/back126 2"
run wbpattern write /dev/mapper/wb126 --region 0:8M --ops 300 --sizes 4K,64K --seed 126 --fsync-every 300
echo "dirty of 126: $(cat $WB_SYSFS/caches/2/nr_dirty_caches)"
hit=0
for delay in 60 80 100 120 140 30 160 40 180 50 70 90 110; do
    dmsetup remove wb126
    run mgr_msg free_cache
    run dm_create wb126 --table "0 $SZ writeboost 126 /dev/mapper/back126 0"
    dmesg -c >/dev/null
    rm -f /tmp/rr
    ( mgr_msg resume_cache /dev/mapper/c2; echo "rc $?" > /tmp/rr ) >/dev/null 2>&1 &
    usleep $((delay * 1000))
    dmsetup remove wb126 && removed=1 || removed=0
    wait
    rr=$(cat /tmp/rr)
    echo "delay ${delay}ms: removed=$removed resume: $rr"
    dmesg | grep writeboost
    if [ "$rr" != "rc 0" ]; then
        # removed before the snapshot: refused; resume properly
        run dm_create wb126 --table "0 $SZ writeboost 126 /dev/mapper/back126 0"
        run mgr_msg resume_cache /dev/mapper/c2
        continue
    fi
    if dmesg | grep -q "claimed backing device .* removed device_id 126"; then
        run dm_create wb126 --table "0 $SZ writeboost 126 /dev/mapper/back126 0"
        continue
    fi
    hit=1
    break
done
[ $hit = 1 ] || { echo "window not hit"; wb_teardown_all; exit 0; }
echo "=== cache 2 holds $(cat $WB_SYSFS/caches/2/nr_dirty_caches) dirty lines of removed device 126 and did not claim its disk"
if dm_create xl --table "0 $SZ linear /dev/mapper/back126 0"; then
    bad "a dm-linear table over the disk of removed device 126 (dirty data in cache 2) is accepted"
    run wbpattern write /dev/mapper/xl --region 0:8M --ops 300 --sizes 4K --seed 999 --fsync-every 300
    run wbpattern check /dev/mapper/xl --region 0:8M --ops 300 --sizes 4K --seed 999
    echo 1 > $WB_SYSFS/caches/2/allow_migrate
    k=0; while [ "$(cat $WB_SYSFS/caches/2/nr_dirty_caches)" != 0 ] && [ $k -lt 120 ]; do sleep 1; k=$((k + 1)); done
    echo "cache 2 dirty lines after ${k}s of migration: $(cat $WB_SYSFS/caches/2/nr_dirty_caches)"
    if ! wbpattern check /dev/mapper/xl --region 0:8M --ops 300 --sizes 4K --seed 999 > /tmp/c 2>&1; then
        tail -4 /tmp/c
        bad "fsynced data on the disk was overwritten by the write-back of removed device 126's stale data"
    fi
    dmsetup remove xl
fi
wb_teardown_all
[ $F = 0 ] || die "$F findings"
echo "race-claim OK"
