# breakL D: while parked lines of a dead disk (id 7, 18 MiB of a 32 MiB
# cache) are relocated, id 9 gets fsync-after-every-op writes, O_DSYNC
# writes, discards, and suspend/resume of itself and the manager plus
# manager messages (allow_migrate 0/1, force_migrate, flush_current_buffer).
# Nothing may hang, fail, or read back wrong; then the disk heals, all drains.
. /wb/tests/lib.sh
set -e
since() { dmesg | tail -n +$((mark + 1)); }
ndirty() { mgr_msg switch_to 1; mgr_status_value nr_dirty_caches; }
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run mgr_create
run mgr_msg format_cache_device /dev/mapper/cdev
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
sz=$((64 * 2048))
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run wb_create wb7 7 /dev/mapper/b7 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 1
run timeout 120 wbpattern fill /dev/mapper/wb9 --region 0:40M --gen 1000 --seed 9
run wait_clean 9 120
run mgr_msg allow_migrate 0
run timeout 120 wbpattern fill /dev/mapper/wb7 --region 0:18M --gen 1000 --seed 7
echo "dirty 7 before the disk dies: $(cat $WB_SYSFS/devices/7/nr_dirty_caches)"
mark=$(dmesg | wc -l)
run dmsetup suspend b7
run dmsetup load b7 --table "0 $sz flakey $WB_BACKING 0 0 3600 1 error_writes"
run dmsetup resume b7
run mgr_msg allow_migrate 1
sleep 2
rm -f /tmp/stop
( timeout 500 wbpattern write /dev/mapper/wb9 --region 0:24M --ops 1500 --sizes 4K,64K --seed 9 --gen-base 2000 --fsync-every 1 > /tmp/wa.out 2>&1; echo "A rc=$?" >> /tmp/wa.out ) &
pa=$!
( timeout 500 wbpattern write /dev/mapper/wb9 --region 24M:16M --ops 1500 --sizes 4K,64K --seed 9 --gen-base 5000 --fua > /tmp/wb.out 2>&1; echo "B rc=$?" >> /tmp/wb.out ) &
pb=$!
( n=0; while [ ! -e /tmp/stop ]; do n=$((n+1))
    timeout 60 dd if=/dev/urandom of=/dev/mapper/wb9 bs=64k seek=$((40 * 16)) count=64 oflag=direct 2>/dev/null || echo "DISC dd fail $? pass $n"
    timeout 60 blkdiscard -o $((40 << 20)) -l $((4 << 20)) /dev/mapper/wb9 || echo "DISC blkdiscard fail $? pass $n"
  done; echo "discard passes $n" ) > /tmp/disc.log 2>&1 &
pd=$!
( n=0; while [ ! -e /tmp/stop ]; do n=$((n+1))
    for c in "dmsetup suspend wb9" "dmsetup resume wb9" "dmsetup message writeboost-mgr 0 allow_migrate 0" \
             "dmsetup message writeboost-mgr 0 flush_current_buffer" "dmsetup message writeboost-mgr 0 allow_migrate 1" \
             "dmsetup message writeboost-mgr 0 force_migrate 1" "dmsetup suspend writeboost-mgr" "dmsetup resume writeboost-mgr" \
             "dmsetup message writeboost-mgr 0 force_migrate 0" "dmsetup suspend wb7" "dmsetup resume wb7" "dmsetup status"; do
        t0=$(date +%s)
        timeout 60 $c >/dev/null 2>/tmp/cerr || echo "CHAOS '$c' rc $? after $(( $(date +%s) - t0 )) s: $(cat /tmp/cerr)"
        sleep 0.3
    done
  done; echo "chaos passes $n" ) > /tmp/chaos.log 2>&1 &
pc=$!
wait $pa || true; wait $pb || true
touch /tmp/stop; wait $pd || true; wait $pc || true
dmsetup resume wb9 2>/dev/null; dmsetup resume writeboost-mgr 2>/dev/null; dmsetup resume wb7 2>/dev/null
cat /tmp/wa.out | tail -3; cat /tmp/wb.out | tail -3; cat /tmp/disc.log; cat /tmp/chaos.log
echo "relocated: $(mgr_status_value nr_relocated_lines)"
since | grep -v "^$" | tail -12
grep -q "A rc=0" /tmp/wa.out || die "fsync writer failed"
grep -q "B rc=0" /tmp/wb.out || die "O_DSYNC writer failed"
grep -q "DISC" /tmp/disc.log && die "discard loop failed"
grep -q "CHAOS" /tmp/chaos.log && die "a command failed or hung"
run mgr_msg allow_migrate 1
run wbpattern check /dev/mapper/wb9 --region 0:24M --ops 1500 --sizes 4K,64K --seed 9 --gen-base 2000 --initial gen:1000
run wbpattern check /dev/mapper/wb9 --region 24M:16M --ops 1500 --sizes 4K,64K --seed 9 --gen-base 5000 --initial gen:1000
run wbpattern check /dev/mapper/wb7 --region 0:18M --ops 0 --initial gen:1000 --seed 7
d7=$(cat $WB_SYSFS/devices/7/nr_dirty_caches); echo "dirty 7: $d7"
[ "$d7" -ge 4608 ] || die "id 7 lost lines: $d7"
echo "--- detach of wb9 while 7 is parked"
run wait_clean 9 180
dmsetup table wb9 | sed 's/ 1$/ 0/' | dmsetup load wb9
t0=$(date +%s); rc=0
timeout 100 dmsetup suspend wb9 || rc=$?
echo "detach suspend rc=$rc after $(( $(date +%s) - t0 )) s"; dmsetup resume wb9 || true
dmsetup table wb9
[ $rc = 0 ] || die "detach of clean wb9 failed while 7 parked"
echo "--- heal b7"
run dmsetup suspend b7
run dmsetup load b7 --table "0 $sz linear $WB_BACKING 0"
run dmsetup resume b7
run wait_clean 7 180
run wbpattern check /dev/mapper/b7 --region 0:18M --ops 0 --initial gen:1000 --seed 7
run wbpattern check /dev/mapper/b9 --region 0:24M --ops 1500 --sizes 4K,64K --seed 9 --gen-base 2000 --initial gen:1000
run wbpattern check /dev/mapper/b9 --region 24M:16M --ops 1500 --sizes 4K,64K --seed 9 --gen-base 5000 --initial gen:1000
echo "chaos-reloc OK"
