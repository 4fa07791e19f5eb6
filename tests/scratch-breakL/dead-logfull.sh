# breakL A: device 7's backing disk dies (dm-error: reads AND writes fail)
# after its 18 MiB of dirty data fill more than half of a 32 MiB cache.
# Device 9 writes ~2.5x the cache (sequential + random with fsyncs) while
# device 7's data is read back concurrently. Then the disk heals: all drains.
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
run dd if=/dev/zero of=/dev/mapper/b7 bs=1M count=20 oflag=direct 2>/dev/null
run wb_create wb7 7 /dev/mapper/b7 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 0
run timeout 120 wbpattern fill /dev/mapper/wb7 --region 0:18M --gen 1000 --seed 7
echo "dirty after fill: $(ndirty)"
mark=$(dmesg | wc -l)
echo "--- b7 dies (dm-error)"
run dmsetup suspend b7
run dmsetup load b7 --table "0 $sz error"
run dmsetup resume b7
run mgr_msg allow_migrate 1
i=0
while [ "$(cat $WB_SYSFS/devices/7/writeback_error)" = 0 ]; do
    i=$((i + 1)); [ $i -le 100 ] || die "no writeback_error for 7"; sleep 0.2
done
echo "--- device 7 write must fail with EIO quickly"
t0=$(date +%s); rc=0
timeout 60 dd if=/dev/zero of=/dev/mapper/wb7 bs=4k seek=100 count=1 oflag=direct 2>/tmp/e7 || rc=$?
echo "wb7 write rc=$rc after $(( $(date +%s) - t0 )) s: $(cat /tmp/e7 | tail -1)"
echo "--- device 9 writes; device 7 read back in a loop meanwhile"
( n=0; while [ ! -e /tmp/stop ]; do
    n=$((n+1))
    timeout 120 wbpattern check /dev/mapper/wb7 --region 0:18M --ops 0 --initial gen:1000 --seed 7 >/tmp/c7.out 2>&1 || { echo "READ7 FAIL pass $n rc $?"; tail -5 /tmp/c7.out; }
  done; echo "reader passes: $n" ) > /tmp/reader.log 2>&1 &
rp=$!
rc=0
timeout 400 wbpattern fill /dev/mapper/wb9 --region 0:48M --gen 1000 --seed 9 || rc=$?
[ $rc = 0 ] || { since | tail -8; die "device 9 fill failed ($rc)"; }
echo "relocated after fill: $(mgr_status_value nr_relocated_lines)"
rc=0
timeout 400 wbpattern write /dev/mapper/wb9 --region 0:48M --ops 2500 --sizes 4K,64K --seed 9 --gen-base 2000 --fsync-every 25 > /tmp/w9.out || rc=$?
[ $rc = 0 ] || { since | tail -8; tail -3 /tmp/w9.out; die "device 9 random writes failed ($rc)"; }
touch /tmp/stop; wait $rp || true
cat /tmp/reader.log
grep -q "READ7 FAIL" /tmp/reader.log && die "device 7's cached data did not read back during relocation"
run wbpattern check /dev/mapper/wb9 --region 0:48M --ops 2500 --sizes 4K,64K --seed 9 --gen-base 2000 --initial gen:1000
echo "relocated: $(mgr_status_value nr_relocated_lines)"
dmsetup status writeboost-mgr
d7=$(cat $WB_SYSFS/devices/7/nr_dirty_caches); echo "dirty 7: $d7"
[ "$d7" -ge 4608 ] || die "device 7 lost dirty lines: $d7"
run wait_clean 9 180
echo "--- heal b7"
run dmsetup suspend b7
run dmsetup load b7 --table "0 $sz linear $WB_BACKING 0"
run dmsetup resume b7
run wait_clean 7 180
run wbpattern check /dev/mapper/b7 --region 0:18M --ops 0 --initial gen:1000 --seed 7
run wbpattern check /dev/mapper/b9 --region 0:48M --ops 2500 --sizes 4K,64K --seed 9 --gen-base 2000 --initial gen:1000
run wbpattern check /dev/mapper/wb7 --region 0:18M --ops 0 --initial gen:1000 --seed 7
since | grep -v "^$" | tail -15
echo "dead-logfull OK"
