# See boot1.sh.
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
n9=$(mark_get 0); n8=$(mark_get 2); echo "durable: w9 $n9 w8 $n8"
run timeout 120 wbpattern check /dev/mapper/wb8 --region 0:8M --ops 100000 --sizes 4K,16K --seed 8 --gen-base 500000 --durable $n8 --initial gen:1000
run timeout 120 wbpattern check /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 9 --gen-base 10000 --durable $n9 --initial zero
klog_mark
( timeout 30 wbpattern write /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 9 --gen-base 200000 --fsync-every 50 > /tmp/w9 2>&1; echo "w9 exit $?" >> /tmp/w9 ) &
last=0; since=$(date +%s); worst=0
for i in $(seq 1 14); do
    sleep 2
    n=$(sed -n 's/^flushed //p' /tmp/w9 | tail -1)
    n=${n:-0}
    now=$(date +%s)
    if [ "$n" != "$last" ]; then last=$n; since=$now; fi
    [ $((now - since)) -gt $worst ] && worst=$((now - since))
    echo "t=$i w9 flushed $n relocated $(mgr_status_value nr_relocated_lines) dirty $(cache_dirty)"
done
wait
tail -2 /tmp/w9
[ $worst -lt 10 ] || die "device 9 made no progress for $worst s (parked lines of a dead disk fill a third of the cache)"
if klog_since | grep -q "no room in the log"; then
    die "no room in the log while parked lines fill a third of the cache: $(dmesg | grep 'no room' | tail -1)"
fi
n9=$(sed -n 's/^flushed //p' /tmp/w9 | tail -1)
run timeout 120 wbpattern check /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 9 --gen-base 200000 --durable $n9 --initial any
echo "parked lines after a power cut: device 9 kept going ($n9 ops flushed)"
