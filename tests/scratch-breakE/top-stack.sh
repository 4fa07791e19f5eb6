# breakE: dm-linear on top of a writeboost device; batched libaio
# submissions mixing large (direct) writes and reads of the same few MiB,
# so reads of pending lines are mapped in the same submission chain as the
# writes they wait for. Must not hang. Run with a slow cache disk:
#   python3 scripts/guest.py --fast-bps 8388608 run tests/scratch-breakE/top-stack.sh
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((128 * 2048))
run dm_create top --table "0 $((128 * 2048)) linear /dev/mapper/wb1 0"
( fio --name=a --filename=/dev/mapper/top --rw=randrw --rwmixread=50 --bssplit=64k/30:128k/30:1m/20:4k/20 --offset=0 --size=4M --direct=1 --ioengine=libaio --iodepth=32 --iodepth_batch_submit=16 --iodepth_batch_complete_min=1 --numjobs=3 --runtime=20 --time_based --group_reporting --output=/dev/null > /tmp/a 2>&1; echo "rc $?" >> /tmp/a ) &
( fio --name=b --filename=/dev/mapper/wb1 --rw=randrw --bssplit=64k/50:1m/20:4k/30 --offset=0 --size=4M --direct=1 --ioengine=libaio --iodepth=16 --iodepth_batch_submit=8 --runtime=20 --time_based --output=/dev/null > /tmp/b 2>&1; echo "rc $?" >> /tmp/b ) &
k=0; while [ $(cat /tmp/a /tmp/b 2>/dev/null | grep -c '^rc ') -lt 2 ]; do k=$((k+1)); [ $k -lt 100 ] || { bad "HANG: stacked fio"; echo w > /proc/sysrq-trigger; dmesg | tail -80; break; }; sleep 1; done
cat /tmp/a /tmp/b | grep '^rc'
grep -q '^rc 0' /tmp/a || bad "fio a"
grep -q '^rc 0' /tmp/b || bad "fio b"
run dmsetup remove top
wb_teardown_all || bad "teardown"
rmmod dm_writeboost || bad "rmmod"
[ $F = 0 ] || die "$F findings"
echo "top-stack OK"
