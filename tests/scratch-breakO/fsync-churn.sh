# breakO D: churn for fsync-heavy writers. A 31-segment cache; device 9
# writes 4 KiB with an fsync after each (every fsync writes a segment), 15 s,
# first with no parked lines (baseline), then with device 8's dead disk
# parking 20 MiB (65% of the cache); then a sparse writer (one 4 KiB write +
# fsync every 0.2 s). Reports ops done, nr_relocated_lines, cache-device
# writes. Data checked at the end.
. /wb/tests/lib.sh
set -e
sz=$((128 * 2048))
# breakO helpers (pasted into each script; the guest gets only test files).
st() { mgr_msg switch_to 1 >/dev/null 2>&1; echo "[$(date +%s)] tail=$(mgr_status_value last_migrated_segment_id) rec=$(mgr_status_value record_migrated_segment_id) flushed=$(mgr_status_value last_flushed_segment_id) dirty=$(mgr_status_value nr_dirty_caches) reloc=$(mgr_status_value nr_relocated_lines) d8=$(cat $WB_SYSFS/devices/8/nr_dirty_caches 2>/dev/null) d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches 2>/dev/null) $*"; }
kill_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz error" && dmsetup resume $1; }
heal_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz linear $WB_BACKING $2" && dmsetup resume $1; }
wait_klog() { _i=0; until dmesg | grep -q "$1"; do _i=$((_i+1)); [ $_i -lt ${2:-60} ] || return 1; sleep 1; done; }
sectors_written() { m=$(ls -lL $1 | awk '{print $6}'); awk '{print $7}' /sys/dev/block/252:$m/stat; }
run small_cache_setup 32
run dm_create b8 --table "0 $sz linear $WB_BACKING $sz"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run dd if=/dev/zero of=/dev/mapper/b8 bs=1M count=20 oflag=direct 2>/dev/null
run dd if=/dev/zero of=/dev/mapper/b9 bs=1M count=64 oflag=direct 2>/dev/null
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 1
fsync_phase() {
    r0=$(mgr_status_value nr_relocated_lines); c0=$(sectors_written /dev/mapper/cdev); t0=$(date +%s)
    timeout 15 wbpattern write /dev/mapper/wb9 --region 0:60M --ops 1000000 --sizes 4K --seed $2 --gen-base $3 --fsync-every 1 > /tmp/w 2>&1 || true
    n=$(sed -n 's/^flushed //p' /tmp/w | tail -1)
    echo "RESULT $1: $n ops (4 KiB + fsync) in $(( $(date +%s) - t0 )) s; relocated $(( $(mgr_status_value nr_relocated_lines) - r0 )); cache device written $(( ($(sectors_written /dev/mapper/cdev) - c0) / 2048 )) MiB"
    durable=$n
}
fsync_phase baseline 31 1000000
run wait_clean 9 60
run mgr_msg allow_migrate 0
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:20M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
run kill_disk b8
run mgr_msg allow_migrate 1
wait_klog "device_id 8: write-back to its backing device failed" 30 || die "no failure"
fsync_phase parked 32 2000000
run timeout 120 wbpattern check /dev/mapper/wb9 --region 0:60M --ops $durable --sizes 4K --seed 32 --gen-base 2000000 --durable $durable --initial any
r0=$(mgr_status_value nr_relocated_lines); c0=$(sectors_written /dev/mapper/cdev); t0=$(date +%s)
for i in $(seq 1 60); do
    mkfill "$(printf "\\$(printf %03o $((64 + i % 26)))")" 4096 /tmp/blk
    dd if=/tmp/blk of=/dev/mapper/wb9 bs=4k seek=$((20000 + i * 3)) count=1 oflag=direct conv=fsync 2>/dev/null
    sleep 0.2
done
echo "RESULT sparse: 60 writes (4 KiB + fsync, 0.2 s apart) in $(( $(date +%s) - t0 )) s; relocated $(( $(mgr_status_value nr_relocated_lines) - r0 )); cache device written $(( ($(sectors_written /dev/mapper/cdev) - c0) / 2048 )) MiB"
run wait_clean 9 60
st "device 9 clean, device 8 dead"
[ "$(cat $WB_SYSFS/devices/8/nr_dirty_caches)" = 5120 ] || die "device 8's parked lines changed"
run heal_disk b8 $sz
wait_cache_clean 120 || die "never drained"
run wbpattern check /dev/mapper/b8 --region 0:20M --ops 0 --initial gen:1000 --seed 8
echo PASS
