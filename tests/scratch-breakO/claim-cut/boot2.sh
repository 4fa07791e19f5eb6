# See boot1.sh (claim-release with a power cut instead of free_cache).
. /wb/tests/lib.sh
set -e
sz=$((64 * 2048))
# breakO helpers (pasted into each script; the guest gets only test files).
st() { mgr_msg switch_to 1 >/dev/null 2>&1; echo "[$(date +%s)] tail=$(mgr_status_value last_migrated_segment_id) rec=$(mgr_status_value record_migrated_segment_id) flushed=$(mgr_status_value last_flushed_segment_id) dirty=$(mgr_status_value nr_dirty_caches) reloc=$(mgr_status_value nr_relocated_lines) d8=$(cat $WB_SYSFS/devices/8/nr_dirty_caches 2>/dev/null) d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches 2>/dev/null) $*"; }
kill_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz error" && dmsetup resume $1; }
heal_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz linear $WB_BACKING $2" && dmsetup resume $1; }
wait_klog() { _i=0; until dmesg | grep -q "$1"; do _i=$((_i+1)); [ $_i -lt ${2:-60} ] || return 1; sleep 1; done; }
[ "$(mark_get 5)" = boot1-done ] || die "boot 1 did not finish"
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run dm_create b8 --table "0 $sz error"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run wbpattern check /dev/mapper/b9 --region 0:2M --ops 0 --seed 9 --initial gen:3000
run mgr_create
run mgr_msg switch_to 1
run dm_create wb8 --table "0 $sz writeboost 8 /dev/mapper/b8 0"
if mgr_msg resume_cache /dev/mapper/cdev; then
    echo "resume without device 9: accepted"
else
    klog_tail 3
    echo "resume without device 9 refused; creating device 9 over b9 (the admin guide: create device_id D)"
    run dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b9 0"
    run mgr_msg resume_cache /dev/mapper/cdev
fi
klog_tail 6
run mgr_msg switch_to 1
st "resumed"
dmsetup info wb9 >/dev/null 2>&1 && dmsetup message wb9 0 add_sysfs || true
dmsetup message wb8 0 add_sysfs || true
run mgr_msg allow_migrate 1
sleep 10
st "10 s after resume"
if wbpattern check /dev/mapper/b9 --region 0:2M --ops 0 --seed 9 --initial gen:3000 > /tmp/c 2>&1; then
    echo "b9 still holds V2: held"
else
    tail -5 /tmp/c
    die "b9 lost the admin's direct writes (V2) to device 9's old data replayed from the log"
fi
echo PASS
