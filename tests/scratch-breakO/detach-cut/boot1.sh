# breakO B, boot 1: device 8's dead disk parks 14 MiB at the tail of a
# 31-segment log. Devices 9, 10, 11 write 2 MiB each (V1) behind it.
# 9: written back, then detached (cache_id 0): the record must pass its
#    lines first; then V2 written straight through wb9 (pass-through).
# 10: written back, then `dmsetup remove`d clean; V2 written to b10.
# 11: removed while dirty (claim), written back (claim released); V2 written
#    to b11 directly.
# Power cut. Boot 2 checks that b9, b10, b11 hold V2.
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
for d in 9 10 11; do run dm_create b$d --table "0 $sz linear $WB_BACKING $(( (d - 7) * sz ))"; done
run dd if=/dev/zero of=/dev/mapper/b8 bs=1M count=14 oflag=direct 2>/dev/null
for d in 9 10 11; do run dd if=/dev/zero of=/dev/mapper/b$d bs=1M count=4 oflag=direct 2>/dev/null; done
run wb_create wb8 8 /dev/mapper/b8 1
for d in 9 10 11; do run wb_create wb$d $d /dev/mapper/b$d 1; done
run mgr_msg allow_migrate 0
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:14M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
run kill_disk b8
for d in 9 10 11; do
    run timeout 60 wbpattern fill /dev/mapper/wb$d --region 0:2M --gen 2000 --seed $d
    run dd if=/dev/zero of=/dev/mapper/wb$d bs=4k count=0 conv=fsync 2>/dev/null
done
run dmsetup remove wb11
st "after fills"
run mgr_msg allow_migrate 1
wait_klog "device_id 11 is written back" 60 || die "device 11 never written back"
wait_clean 9 60; wait_clean 10 60
st "9, 10, 11 written back"
t0=$(date +%s)
if wb_set_cache wb9 0; then echo "detach of 9 took $(( $(date +%s) - t0 )) s"; else klog_tail 3; die "detach of device 9 failed after $(( $(date +%s) - t0 )) s"; fi
st "9 detached"
t0=$(date +%s)
run dmsetup remove wb10
echo "remove of 10 took $(( $(date +%s) - t0 )) s"; st "10 removed"
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen 3000 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
for d in 10 11; do
    run timeout 60 wbpattern fill /dev/mapper/b$d --region 0:2M --gen 3000 --seed $d
    run blockdev --flushbufs /dev/mapper/b$d
done
for d in 9 10 11; do run wbpattern check /dev/mapper/b$d --region 0:2M --ops 0 --seed $d --initial gen:3000; done
st "V2 everywhere, power cut"
mark_put 5 boot1-done
wb_powercut
