. /wb/tests/lib.sh
set -e
rec=$((400 * 2048))
sz=$((64 * 2048))
getrec() { dd if=$WB_BACKING bs=512 skip=$(($rec + $1)) count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -1; }
putrec() { echo "$2" | dd of=$WB_BACKING bs=512 seek=$(($rec + $1)) conv=sync,fsync oflag=direct 2>/dev/null; }
w9() { wbpattern write /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 9 --gen-base $1 --fsync-every 50 | while read -r what n; do [ "$what" = flushed ] && putrec 0 "$n"; done; }
w8() { wbpattern write /dev/mapper/wb8 --region 0:8M --ops 100000 --sizes 4K,16K --seed 8 --gen-base $1 --fsync-every 50 | while read -r what n; do [ "$what" = flushed ] && putrec 2 "$n"; done; }
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run dm_create b8 --table "0 $sz error"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run mgr_create
run wb_create wb8 8 /dev/mapper/b8 0
run wb_create wb9 9 /dev/mapper/b9 0
run mgr_msg switch_to 1
m=$(dmesg | wc -l)
run mgr_msg resume_cache /dev/mapper/cdev
dmesg | tail -n +$((m+1)) | grep "cache 1" | head
run wb_set_cache wb8 1
run wb_set_cache wb9 1
n9=$(getrec 0); n8=$(getrec 2); echo "durable: w9 $n9 w8 $n8"
run timeout 120 wbpattern check /dev/mapper/wb8 --region 0:8M --ops 100000 --sizes 4K,16K --seed 8 --gen-base 500000 --durable $n8 --initial gen:1000
run timeout 120 wbpattern check /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 9 --gen-base 10000 --durable $n9 --initial zero
dd if=/dev/mapper/wb8 bs=1M count=8 iflag=direct 2>/dev/null | md5sum > /tmp/h8
dd if=/dev/mapper/wb9 bs=1M count=60 iflag=direct 2>/dev/null | md5sum > /tmp/h9
putrec 4 "$(cut -d' ' -f1 /tmp/h8)"; putrec 5 "$(cut -d' ' -f1 /tmp/h9)"
snap() { echo "t=$(date +%s) $1: relocated $(mgr_status_value nr_relocated_lines) seg $(mgr_status_value 'current segment id') dirty $(cache_dirty) migrated $(mgr_status_value last_migrated_segment_id) rec $(mgr_status_value record_migrated_segment_id) w9 $(getrec 0) w8 $(getrec 2)"; }
for i in 1 2 3; do snap idle0; sleep 2; done
putrec 0 0; putrec 2 0
w9 200000 &
for i in 1 2 3 4 5; do snap w9only; sleep 2; done
: no w8 here
for i in 1 2 3 4 5 6 7 8; do snap w9-still-alone; sleep 2; done
dmsetup status writeboost-mgr | tail -22
:
dmesg | grep -A25 "task:wbpattern" | head -80
killall wbpattern || true
sleep 1
for i in 1 2 3 4 5 6 7 8; do snap idle; sleep 2; done
dmesg | grep writeboost | sort | uniq -c | sort -rn | head
echo done
