# breakO A: device 9 removed while dirty (the cache claims its disk); its
# lines lie behind device 8's parked ones (dead disk). They are written
# back past the parked segment, the claim ends ("is written back: its
# backing device is released"), the admin uses the disk directly (V2).
# Then a clean free_cache + resume_cache: does the replay bring device 9's
# old lines (V1) back over V2? Contract 4: no removal makes older data
# replace newer data on the backing disk.
. /wb/tests/lib.sh
set -e
sz=$((64 * 2048))
# breakO helpers (pasted into each script; the guest gets only test files).
st() { mgr_msg switch_to 1 >/dev/null 2>&1; echo "[$(date +%s)] tail=$(mgr_status_value last_migrated_segment_id) rec=$(mgr_status_value record_migrated_segment_id) flushed=$(mgr_status_value last_flushed_segment_id) dirty=$(mgr_status_value nr_dirty_caches) reloc=$(mgr_status_value nr_relocated_lines) d8=$(cat $WB_SYSFS/devices/8/nr_dirty_caches 2>/dev/null) d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches 2>/dev/null) $*"; }
kill_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz error" && dmsetup resume $1; }
heal_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz linear $WB_BACKING $2" && dmsetup resume $1; }
wait_klog() { _i=0; until dmesg | grep -q "$1"; do _i=$((_i+1)); [ $_i -lt ${2:-60} ] || return 1; sleep 1; done; }
run small_cache_setup 32
run dm_create b8 --table "0 $sz linear $WB_BACKING $sz"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run dd if=/dev/zero of=/dev/mapper/b8 bs=1M count=14 oflag=direct 2>/dev/null
run dd if=/dev/zero of=/dev/mapper/b9 bs=1M count=4 oflag=direct 2>/dev/null
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 0
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:14M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
run kill_disk b8
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen 2000 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
st "after fills"
run dmsetup remove wb9
klog_tail 3
run mgr_msg allow_migrate 1
wait_klog "device_id 9 is written back" 60 || { st; die "device 9 never written back"; }
dmesg | grep "device_id [89]" | tail -5
st "device 9 written back, claim released"
sleep 5
st "5 s later"
# The admin uses the released disk directly.
run timeout 60 wbpattern fill /dev/mapper/b9 --region 0:2M --gen 3000 --seed 9
run blockdev --flushbufs /dev/mapper/b9
run wbpattern check /dev/mapper/b9 --region 0:2M --ops 0 --seed 9 --initial gen:3000
st "V2 on b9"
run dmsetup remove wb8
run mgr_msg switch_to 1
run mgr_msg free_cache
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
