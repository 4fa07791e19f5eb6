# Healthy device 9 writes; device 8 (dead disk, 10 MiB parked = a third of
# a 31-segment cache) issues writes meanwhile. Does device 9 keep going?
. /wb/tests/lib.sh
set -e
sz=$((64 * 2048))
run small_cache_setup 32
run dm_create b8 --table "0 $sz error"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 1
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:10M --gen 1000 --seed 8
sync
snap() { echo "t=$(date +%s) $1: relocated $(mgr_status_value nr_relocated_lines) seg $(mgr_status_value 'current segment id') dirty $(cache_dirty) dev8 $(cat $WB_SYSFS/devices/8/nr_dirty_caches) dev9 $(cat $WB_SYSFS/devices/9/nr_dirty_caches) rec $(mgr_status_value record_migrated_segment_id) w9 $(sed -n 's/^flushed //p' /tmp/w9 | tail -1)"; }
( timeout 100 wbpattern write /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 9 --gen-base 5000 --fsync-every 50 > /tmp/w9 2>&1; echo "w9 exit $?" >> /tmp/w9 ) &
for i in 1 2 3 4; do snap w9only; sleep 2; done
( timeout 60 wbpattern write /dev/mapper/wb8 --region 0:10M --ops 100000 --sizes 4K,16K --seed 8 --gen-base 500000 --fsync-every 50 > /tmp/w8 2>&1; echo "w8 exit $?" >> /tmp/w8 ) &
for i in $(seq 1 20); do snap w9+w8; sleep 2; done
cat /tmp/w8 | tail -3
wait
tail -3 /tmp/w9
for i in 1 2 3 4 5; do snap idle; sleep 2; done
dmesg | grep writeboost | sort | uniq -c | sort -rn | head
n9=$(sed -n 's/^flushed //p' /tmp/w9 | tail -1)
run wbpattern check /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 9 --gen-base 5000 --durable $n9 --initial any
grep -q "w9 exit 124" /tmp/w9 || die "device 9's writer stopped early: $(tail -2 /tmp/w9)"
echo "parked-stall: no stall seen"
