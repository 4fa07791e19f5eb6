# Device 8's disk is dead from the start (dm-error); device 8 keeps
# overwriting its own 6 MiB while healthy device 9 (read caching on) writes
# 3x the cache size: device 8's parked lines are relocated while device 8
# rewrites them. Then the disk heals: everything drains; device 8 must read
# its newest writes, device 9 too.
. /wb/tests/lib.sh
set -e
run small_cache_setup 32
run mgr_msg read_cache_threshold 4
sz=$((64 * 2048))
run dm_create b8 --table "0 $sz error"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run wbpattern fill /dev/mapper/b9 --region 0:64M --gen 1 --seed 9
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 1
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:6M --gen 1000 --seed 8
echo "dirty after dev8 fill: $(cache_dirty)"
r0=$(mgr_status_value nr_relocated_lines)
( timeout 400 wbpattern write /dev/mapper/wb9 --region 0:64M --ops 6000 --sizes 4K,64K,256K --seed 9 --gen-base 2000 --fsync-every 200 > /tmp/w9 2>&1; echo "w9 rc=$?" >> /tmp/w9 ) &
p9=$!
( while :; do awk -v s=$RANDOM 'BEGIN{srand(s); for(i=0;i<40;i++) print int(rand()*16384)}' | while read b; do
    dd if=/dev/mapper/wb9 of=/dev/null bs=4k skip=$b count=1 iflag=direct 2>/dev/null; done; done ) &
pr=$!
rc=0
timeout 400 wbpattern write /dev/mapper/wb8 --region 0:6M --ops 3000 --sizes 4K,16K --seed 8 --gen-base 5000 --fsync-every 100 > /tmp/w8 2>&1 || rc=$?
echo "dev8 writer rc=$rc: $(tail -2 /tmp/w8)"
wait $p9 || true
kill $pr 2>/dev/null || true
cat /tmp/w9 | tail -3
echo "relocated: $(( $(mgr_status_value nr_relocated_lines) - r0 )) dirty $(cache_dirty)"
dmesg | grep -v "^\[" | grep writeboost | sort | uniq -c | sort -rn | head -15
grep -q "w9 rc=0" /tmp/w9 || die "device 9's writer failed"
n8=$(sed -n 's/^flushed //p' /tmp/w8 | tail -1); n8=${n8:-0}
if [ $rc = 0 ]; then o8=3000; n8=3000; else o8=$(sed -n 's/.*write of op \([0-9]*\) .*/\1/p' /tmp/w8); n8=$((o8 - 1)); echo "NOTE: device 8 (dead disk, $(cache_dirty) dirty lines in cache of 7905) got EIO at op $o8"; fi
# steady state: churn?
a=$(mgr_status_value nr_relocated_lines); sleep 10; b=$(mgr_status_value nr_relocated_lines)
echo "relocations in 10 s idle: $((b - a))"
[ $((b - a)) -lt 20000 ] || die "relocation churn while idle: $((b - a)) lines in 10 s"
run wbpattern check /dev/mapper/wb8 --region 0:6M --ops $o8 --durable $n8 --sizes 4K,16K --seed 8 --gen-base 5000 --initial gen:1000
run wbpattern check /dev/mapper/wb9 --region 0:64M --ops 6000 --sizes 4K,64K,256K --seed 9 --gen-base 2000 --initial gen:1
# heal
run dmsetup suspend b8
run dmsetup load b8 --table "0 $sz linear $WB_BACKING 0"
run dmsetup resume b8
run mgr_msg force_migrate 1
wait_cache_clean 240 || die "no drain after healing"
run wbpattern check /dev/mapper/b8 --region 0:6M --ops $o8 --durable $n8 --sizes 4K,16K --seed 8 --gen-base 5000 --initial gen:1000
run wbpattern check /dev/mapper/b9 --region 0:64M --ops 6000 --sizes 4K,64K,256K --seed 9 --gen-base 2000 --initial gen:1
run wbpattern check /dev/mapper/wb8 --region 0:6M --ops $o8 --durable $n8 --sizes 4K,16K --seed 8 --gen-base 5000 --initial gen:1000
echo "parked-overwrite OK"
