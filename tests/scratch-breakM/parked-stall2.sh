# Like pc-churn2 but in one boot (no power cut): device 8 (dead disk) and
# device 9 write together, stop; then device 9 writes alone, then device 8
# issues one write. Watch device 9's progress and nr_relocated_lines.
. /wb/tests/lib.sh
set -e
rec=$((400 * 2048))
sz=$((64 * 2048))
getrec() { dd if=$WB_BACKING bs=512 skip=$(($rec + $1)) count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -1; }
putrec() { echo "$2" | dd of=$WB_BACKING bs=512 seek=$(($rec + $1)) conv=sync,fsync oflag=direct 2>/dev/null; }
w9() { wbpattern write /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 9 --gen-base $1 --fsync-every 50 | while read -r what n; do [ "$what" = flushed ] && putrec 0 "$n"; done; }
w8() { wbpattern write /dev/mapper/wb8 --region 0:8M --ops 100000 --sizes 4K,16K --seed 8 --gen-base $1 --fsync-every 50 | while read -r what n; do [ "$what" = flushed ] && putrec 2 "$n"; done; }
snap() { echo "t=$(date +%s) $1: relocated $(mgr_status_value nr_relocated_lines) seg $(mgr_status_value 'current segment id') dirty $(cache_dirty) rec $(mgr_status_value record_migrated_segment_id) w9 $(getrec 0) w8 $(getrec 2)"; }
run small_cache_setup 32
run dm_create b8 --table "0 $sz error"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 1
putrec 0 0; putrec 2 0
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:8M --gen 1000 --seed 8
sync
w9 10000 &
w8 500000 &
sleep 15
killall wbpattern || true
sleep 2
for i in 1 2 3; do snap idle0; sleep 2; done
putrec 0 0; putrec 2 0
w9 200000 &
for i in 1 2 3 4 5; do snap w9only; sleep 2; done
w8 800000 &
for i in 1 2 3 4 5 6 7 8 9 10; do snap w9+w8; sleep 2; done
killall wbpattern || true
sleep 1
for i in 1 2 3 4 5 6 7 8 9 10; do snap idle; sleep 2; done
dmesg | grep writeboost | sort | uniq -c | sort -rn | head
echo done
