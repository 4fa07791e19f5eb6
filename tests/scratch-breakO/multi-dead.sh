# breakO E: two dead disks (devices 7 and 8, lines interleaved in the log),
# device 9 healthy behind them. Device 7's disk heals while 8's stays dead:
# its retry must reach all its lines (some behind 8's parked segments) and
# drain. Then force_migrate and write_around_mode 1 with 8 still dead.
. /wb/tests/lib.sh
set -e
sz=$((64 * 2048))
# breakO helpers (pasted into each script; the guest gets only test files).
st() { mgr_msg switch_to 1 >/dev/null 2>&1; echo "[$(date +%s)] tail=$(mgr_status_value last_migrated_segment_id) rec=$(mgr_status_value record_migrated_segment_id) flushed=$(mgr_status_value last_flushed_segment_id) dirty=$(mgr_status_value nr_dirty_caches) reloc=$(mgr_status_value nr_relocated_lines) d8=$(cat $WB_SYSFS/devices/8/nr_dirty_caches 2>/dev/null) d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches 2>/dev/null) $*"; }
kill_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz error" && dmsetup resume $1; }
heal_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz linear $WB_BACKING $2" && dmsetup resume $1; }
wait_klog() { _i=0; until dmesg | grep -q "$1"; do _i=$((_i+1)); [ $_i -lt ${2:-60} ] || return 1; sleep 1; done; }
run small_cache_setup 32
for d in 7 8 9; do run dm_create b$d --table "0 $sz linear $WB_BACKING $(( (d - 6) * sz ))"; run dd if=/dev/zero of=/dev/mapper/b$d bs=1M count=8 oflag=direct 2>/dev/null; done
for d in 7 8 9; do run wb_create wb$d $d /dev/mapper/b$d 1; done
run mgr_msg allow_migrate 0
for part in 0 1 2 3; do for d in 7 8; do
    run timeout 60 wbpattern fill /dev/mapper/wb$d --region $((part * 2))M:2M --gen $((1000 + part)) --seed $d
    run dd if=/dev/zero of=/dev/mapper/wb$d bs=4k count=0 conv=fsync 2>/dev/null
done; done
run kill_disk b7
run kill_disk b8
run timeout 60 wbpattern write /dev/mapper/wb9 --region 0:4M --ops 400 --sizes 4K,16K --seed 9 --gen-base 2000 --fsync-every 50
st "filled"
run mgr_msg allow_migrate 1
wait_klog "device_id 7: write-back to its backing device failed" 30 || die "7 no failure"
wait_klog "device_id 8: write-back to its backing device failed" 30 || die "8 no failure"
run wait_clean 9 60
st "9 clean past parked 7 and 8"
run heal_disk b7 $sz
t0=$(date +%s)
run wait_clean 7 120
echo "device 7 drained $(( $(date +%s) - t0 )) s after its heal (retry at most 30 s)"; st
[ "$(cat $WB_SYSFS/devices/8/nr_dirty_caches)" = 2048 ] || die "device 8's parked lines changed"
for part in 0 1 2 3; do run wbpattern check /dev/mapper/b7 --region $((part * 2))M:2M --ops 0 --initial gen:$((1000 + part)) --seed 7; done
# force_migrate with a dead disk: device 9's new data must go out, 8 stays.
run mgr_msg allow_migrate 0
run timeout 60 wbpattern write /dev/mapper/wb9 --region 0:4M --ops 300 --sizes 4K,16K --seed 9 --gen-base 3000 --fsync-every 50
run mgr_msg force_migrate 1
t0=$(date +%s)
run wait_clean 9 60
echo "force_migrate: device 9 clean in $(( $(date +%s) - t0 )) s"; st
run mgr_msg force_migrate 0
run mgr_msg allow_migrate 1
md5a=$(dd if=/dev/mapper/wb9 bs=1M count=4 iflag=direct 2>/dev/null | md5sum); md5b=$(dd if=/dev/mapper/b9 bs=1M count=4 iflag=direct 2>/dev/null | md5sum)
[ "$md5a" = "$md5b" ] || die "b9 differs from wb9 after force_migrate"
# write-around with 8 dead (record behind 8's lines: drops logged).
run mgr_msg write_around_mode 1
run timeout 60 wbpattern write /dev/mapper/wb9 --region 0:4M --ops 300 --sizes 4K,16K --seed 9 --gen-base 4000 --fsync-every 50
run timeout 60 wbpattern check /dev/mapper/wb9 --region 0:4M --ops 300 --sizes 4K,16K --seed 9 --gen-base 4000 --initial any
run mgr_msg write_around_mode 0
run wait_clean 9 60
md5a=$(dd if=/dev/mapper/wb9 bs=1M count=4 iflag=direct 2>/dev/null | md5sum); md5b=$(dd if=/dev/mapper/b9 bs=1M count=4 iflag=direct 2>/dev/null | md5sum)
[ "$md5a" = "$md5b" ] || die "b9 differs from wb9 after write-around"
for part in 0 1 2 3; do run wbpattern check /dev/mapper/wb8 --region $((part * 2))M:2M --ops 0 --initial gen:$((1000 + part)) --seed 8; done
st "before healing 8"
run heal_disk b8 $sz
wait_cache_clean 120 || die "never drained"
for part in 0 1 2 3; do run wbpattern check /dev/mapper/b8 --region $((part * 2))M:2M --ops 0 --initial gen:$((1000 + part)) --seed 8; done
md5b=$(dd if=/dev/mapper/b9 bs=1M count=4 iflag=direct 2>/dev/null | md5sum)
[ "$md5a" = "$md5b" ] || die "b9 changed after the drain"
echo PASS
