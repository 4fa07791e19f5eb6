# A removed device's disk stays claimed until nothing of the device is
# left in the log that a replay would bring back. Device 9 is removed
# while dirty (the cache claims its disk); its lines lie behind a dead
# disk's parked ones and are written back past them; the claim ends only
# once the record passes them (the parked lines are moved for that), so
# when the admin then writes the disk directly, a free and resume of the
# cache replays nothing of device 9 over it. breakO found it: the claim
# was released as soon as device 9 had no dirty lines, the record still
# at 0, and the resume wanted device 9 back and wrote its old data over
# the admin's (4096 bad sectors).
. /wb/tests/lib.sh
set -e
st() { mgr_msg switch_to 1 >/dev/null 2>&1; echo "[$(date +%s)] tail=$(mgr_status_value last_migrated_segment_id) rec=$(mgr_status_value record_migrated_segment_id) flushed=$(mgr_status_value last_flushed_segment_id) dirty=$(mgr_status_value nr_dirty_caches) reloc=$(mgr_status_value nr_relocated_lines) d8=$(cat $WB_SYSFS/devices/8/nr_dirty_caches 2>/dev/null) d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches 2>/dev/null) $*"; }
wait_klog() { _i=0; until dmesg | grep -q "$1"; do _i=$((_i+1)); [ $_i -lt ${2:-60} ] || return 1; sleep 1; done; }
run pair_setup
run mgr_msg allow_migrate 0
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:14M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
run dm_swap b8 "0 $sz error"
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
if ! mgr_msg resume_cache /dev/mapper/cdev; then
    klog_tail 3
    die "the resume wants device 9 back: its lines are still in the log past the record, though its disk was released"
fi
klog_tail 6
run mgr_msg switch_to 1
st "resumed"
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
