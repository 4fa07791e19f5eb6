. /wb/tests/lib.sh
set -e
rec=$((400 * 2048))
sz=$((64 * 2048))
getrec() { dd if=$WB_BACKING bs=512 skip=$(($rec + $1)) count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -1; }
putrec() { echo "$2" | dd of=$WB_BACKING bs=512 seek=$(($rec + $1)) conv=sync,fsync oflag=direct 2>/dev/null; }
w9() { wbpattern write /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 9 --gen-base $1 --fsync-every 50 | while read -r what n; do [ "$what" = flushed ] && putrec 0 "$n"; done; }
w8() { wbpattern write /dev/mapper/wb8 --region 0:8M --ops 100000 --sizes 4K,16K --seed 8 --gen-base $1 --fsync-every 50 | while read -r what n; do [ "$what" = flushed ] && putrec 2 "$n"; done; }
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run dm_create b8 --table "0 $sz linear $WB_BACKING 0"
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
chk() {
run timeout 120 wbpattern check $1 --region 0:8M --ops 100000 --sizes 4K,16K --seed 8 --gen-base 800000 --durable $n8 --initial any
run timeout 120 wbpattern check $2 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 9 --gen-base 200000 --durable $n9 --initial any
}
chk /dev/mapper/wb8 /dev/mapper/wb9
dd if=/dev/mapper/wb8 bs=1M count=8 iflag=direct 2>/dev/null | md5sum > /tmp/h8
run mgr_msg force_migrate 1
wait_cache_clean 240 || die "no drain after healing"
chk /dev/mapper/b8 /dev/mapper/b9
dd if=/dev/mapper/wb8 bs=1M count=8 iflag=direct 2>/dev/null | md5sum > /tmp/h8b
cmp /tmp/h8 /tmp/h8b || die "device 8 changed during write-back"
echo "pc-parked OK"
