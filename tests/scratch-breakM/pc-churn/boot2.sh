. /wb/tests/lib.sh
set -e
sz=$((64 * 2048))
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run dm_create b8 --table "0 $sz error"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run mgr_create
run wb_create wb8 8 /dev/mapper/b8 0
run wb_create wb9 9 /dev/mapper/b9 0
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
run wb_set_cache wb8 1
run wb_set_cache wb9 1
run mgr_msg allow_migrate 1
snap() { echo "t=$(date +%s) $1: relocated $(mgr_status_value nr_relocated_lines) seg $(mgr_status_value 'current segment id') dirty $(cache_dirty) migrated $(mgr_status_value last_migrated_segment_id)"; }
for i in 1 2 3 4 5 6; do snap idle; sleep 2; done
( timeout 40 wbpattern write /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K --seed 9 --gen-base 5000 --fsync-every 100 > /tmp/w9 2>&1 ) &
for i in 1 2 3 4 5 6 7 8 9 10; do snap writing; echo "   w9: $(grep flushed /tmp/w9 | tail -1)"; sleep 2; done
wait
n9=$(sed -n 's/^flushed //p' /tmp/w9 | tail -1)
for i in 1 2 3; do snap idle-after; sleep 2; done
dmesg | grep writeboost | sort | uniq -c | sort -rn | head
run dmsetup suspend b8
run dmsetup load b8 --table "0 $sz linear $WB_BACKING 0"
run dmsetup resume b8
run mgr_msg force_migrate 1
wait_cache_clean 240 || die "no drain"
run wbpattern check /dev/mapper/b8 --region 0:10M --ops 0 --seed 8 --initial gen:1000
run wbpattern check /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K --seed 9 --gen-base 5000 --durable $n9 --initial any
echo "pc-churn done"
