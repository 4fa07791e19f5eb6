# breakO C: device 8's dead disk parks 20 MiB (65% of a 31-segment cache);
# device 9 writes continuously (60 MiB region, 4K-256K, fsync every 50) for
# 40 s, then unaligned writes (512 B granularity) for 20 s. Watch: stalls,
# EIO, nr_relocated_lines per line written; after each phase device 9's
# dirty count must reach 0 while device 8's disk is still dead, and the data
# must check through wb9 and on b9. Then device 8's disk heals: all drains.
. /wb/tests/lib.sh
set -e
sz=$((128 * 2048))
# breakO helpers (pasted into each script; the guest gets only test files).
st() { mgr_msg switch_to 1 >/dev/null 2>&1; echo "[$(date +%s)] tail=$(mgr_status_value last_migrated_segment_id) rec=$(mgr_status_value record_migrated_segment_id) flushed=$(mgr_status_value last_flushed_segment_id) dirty=$(mgr_status_value nr_dirty_caches) reloc=$(mgr_status_value nr_relocated_lines) d8=$(cat $WB_SYSFS/devices/8/nr_dirty_caches 2>/dev/null) d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches 2>/dev/null) $*"; }
kill_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz error" && dmsetup resume $1; }
heal_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz linear $WB_BACKING $2" && dmsetup resume $1; }
wait_klog() { _i=0; until dmesg | grep -q "$1"; do _i=$((_i+1)); [ $_i -lt ${2:-60} ] || return 1; sleep 1; done; }
sectors_written() { m=$(ls -lL /dev/mapper/$1 | awk '{print $6}'); awk '{print $7}' /sys/dev/block/252:$m/stat; }
run small_cache_setup 32
run dm_create b8 --table "0 $sz linear $WB_BACKING $sz"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run dd if=/dev/zero of=/dev/mapper/b8 bs=1M count=20 oflag=direct 2>/dev/null
run dd if=/dev/zero of=/dev/mapper/b9 bs=1M count=64 oflag=direct 2>/dev/null
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 0
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:20M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
run kill_disk b8
run mgr_msg allow_migrate 1
wait_klog "device_id 8: write-back to its backing device failed" 30 || die "no failure"
st "parked"
m0=$(dmesg | wc -l)

phase() { # name, wbpattern args..., seconds
    name=$1; secs=$2; shift 2
    r0=$(mgr_status_value nr_relocated_lines); s0=$(sectors_written wb9); t0=$(date +%s)
    rm -f /tmp/w; timeout $secs wbpattern write /dev/mapper/wb9 "$@" > /tmp/w 2>&1 &
    wp=$!
    last=0; since=$t0; worst=0
    while kill -0 $wp 2>/dev/null; do
        sleep 2
        if [ $(( $(date +%s) - t0 )) -gt $((secs + 20)) ]; then
            echo "FINDING: $name: writer still not done $(( $(date +%s) - t0 )) s after start (timeout $secs)"
            for p in $(pidof wbpattern); do echo "pid $p: $(cat /proc/$p/status | grep State)"; cat /proc/$p/stack 2>/dev/null; cat /proc/$p/wchan 2>/dev/null; echo; done
            echo w > /proc/sysrq-trigger; sleep 1; dmesg | tail -60
            st; cat /tmp/w | tail -3
            die "$name: writer hung"
        fi
        n=$(sed -n 's/^flushed //p' /tmp/w | tail -1); n=${n:-0}; now=$(date +%s)
        if [ "$n" != "$last" ]; then last=$n; since=$now; fi
        [ $((now - since)) -gt $worst ] && worst=$((now - since))
        st "$name flushed=$n"
    done
    rc=0; wait $wp || rc=$?
    r=$(( $(mgr_status_value nr_relocated_lines) - r0 )); lines=$(( ($(sectors_written wb9) - s0) / 8 ))
    echo "$name: exit $rc (124 = timeout, expected) worst stall ${worst}s, relocated $r for $lines lines written by device 9 in $(( $(date +%s) - t0 )) s"
    grep -v "^flushed\|^exit" /tmp/w | tail -3
    [ "$rc" = 124 ] || [ "$rc" = 143 ] || [ "$rc" = 0 ] || die "$name: writer failed ($rc)"
    [ $worst -lt 10 ] || echo "FINDING: $name: writer stalled ${worst}s"
    durable=$(sed -n 's/^flushed //p' /tmp/w | tail -1)
}
phase seq 40 --region 0:60M --ops 1000000 --sizes 4K,64K,256K --seed 9 --gen-base 10000 --fsync-every 50
run timeout 120 wbpattern check /dev/mapper/wb9 --region 0:60M --ops 1000000 --sizes 4K,64K,256K --seed 9 --gen-base 10000 --durable $durable --initial zero > /tmp/c1 || { tail /tmp/c1; die "wb9 check"; }
tail -1 /tmp/c1
md5a=$(dd if=/dev/mapper/wb9 bs=1M count=60 iflag=direct 2>/dev/null | md5sum)
t0=$(date +%s)
wait_clean 9 90
echo "device 9 clean $(( $(date +%s) - t0 )) s after its writes (device 8 dead)"; st
md5b=$(dd if=/dev/mapper/b9 bs=1M count=60 iflag=direct 2>/dev/null | md5sum)
[ "$md5a" = "$md5b" ] || die "b9 differs from what wb9 read"
phase unaligned 20 --region 0:60M --ops 1000000 --sizes 512,1536,4K,7680,65024 --align 512 --seed 19 --gen-base 3000000 --fsync-every 20
md5a=$(dd if=/dev/mapper/wb9 bs=1M count=60 iflag=direct 2>/dev/null | md5sum)
wait_clean 9 90
md5b=$(dd if=/dev/mapper/b9 bs=1M count=60 iflag=direct 2>/dev/null | md5sum)
[ "$md5a" = "$md5b" ] || die "b9 differs from what wb9 read (unaligned)"
echo "device 9 clean after unaligned phase"; st
# fsync-heavy: 4K writes, fsync each, 15 s
phase fsync1 15 --region 0:60M --ops 1000000 --sizes 4K --seed 29 --gen-base 5000000 --fsync-every 1
wait_clean 9 90
st "after fsync phase"
if dmesg | tail -n +$((m0 + 1)) | grep -q "no room in the log"; then echo "FINDING: no room in the log: $(dmesg | grep 'no room' | tail -1)"; fi
[ "$(cat $WB_SYSFS/devices/8/nr_dirty_caches)" = 5120 ] || die "device 8's parked lines changed: $(cat $WB_SYSFS/devices/8/nr_dirty_caches)"
run heal_disk b8 $sz
t0=$(date +%s)
wait_cache_clean 180 || die "never drained"
echo "drained $(( $(date +%s) - t0 )) s after heal"; st
run wbpattern check /dev/mapper/b8 --region 0:20M --ops 0 --initial gen:1000 --seed 8
run wbpattern check /dev/mapper/wb8 --region 0:20M --ops 0 --initial gen:1000 --seed 8
md5c=$(dd if=/dev/mapper/wb9 bs=1M count=60 iflag=direct 2>/dev/null | md5sum)
md5d=$(dd if=/dev/mapper/b9 bs=1M count=60 iflag=direct 2>/dev/null | md5sum)
[ "$md5c" = "$md5d" ] || die "wb9 and b9 differ at the end"
echo PASS
