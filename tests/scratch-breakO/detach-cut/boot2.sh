# See boot1.sh.
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
for d in 9 10 11; do run dm_create b$d --table "0 $sz linear $WB_BACKING $(( (d - 7) * sz ))"; done
for d in 9 10 11; do run wbpattern check /dev/mapper/b$d --region 0:2M --ops 0 --seed $d --initial gen:3000; done
run mgr_create
run dm_create wb8 --table "0 $sz writeboost 8 /dev/mapper/b8 0"
run mgr_msg switch_to 1
if mgr_msg resume_cache /dev/mapper/cdev; then
    echo "resume with device 8 only: accepted"
else
    klog_tail 2
    echo "FINDING: resume demands another device (above)"
    for d in 9 10 11; do dm_create wb$d --table "0 $sz writeboost $d /dev/mapper/b$d 0" || true; done
    run mgr_msg resume_cache /dev/mapper/cdev
fi
run mgr_msg switch_to 1
for d in 8 9 10 11; do dmsetup message wb$d 0 add_sysfs 2>/dev/null || true; done
st "resumed"
run mgr_msg allow_migrate 1
sleep 8
st "8 s later"
bad=""
for d in 9 10 11; do
    if ! wbpattern check /dev/mapper/b$d --region 0:2M --ops 0 --seed $d --initial gen:3000 > /tmp/c 2>&1; then
        tail -2 /tmp/c; bad="$bad $d"
    fi
    if dmsetup info wb$d >/dev/null 2>&1 && ! wbpattern check /dev/mapper/wb$d --region 0:2M --ops 0 --seed $d --initial gen:3000 > /tmp/c 2>&1; then
        tail -2 /tmp/c; bad="$bad wb$d"
    fi
done
run wbpattern check /dev/mapper/wb8 --region 0:14M --ops 0 --initial gen:1000 --seed 8
run heal_disk b8 $sz
wait_cache_clean 120 || die "never drained"
run wbpattern check /dev/mapper/b8 --region 0:14M --ops 0 --initial gen:1000 --seed 8
[ -z "$bad" ] || die "V2 replaced by older data on:$bad"
echo PASS
