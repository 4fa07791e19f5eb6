# A dead disk's dirty lines fill half the cache (parked); a healthy device
# writes a 4 KiB block now and then. Its lines are written back where they
# are, past the parked ones; the parked lines are moved only when writers
# need room (here they never do). breakN found the churn: every line a
# healthy device wrote ahead of parked lines had all of them moved out of
# its way, again and again while it stayed dirty (20 to 60 lines moved per
# line written there; tens of thousands in this test).
. /wb/tests/lib.sh
set -e
run pair_setup
run dd if=/dev/zero of=/dev/mapper/b8 bs=1M count=14 oflag=direct 2>/dev/null
run dd if=/dev/zero of=/dev/mapper/b9 bs=1M count=1 oflag=direct 2>/dev/null
run mgr_msg allow_migrate 0
# 14 MiB: 3584 lines, 14 of the 31 segments.
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:14M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
run dm_swap b8 "0 $sz error"
run mgr_msg allow_migrate 1
# The first round fails on the dead disk: its lines are parked.
_i=0
until klog_tail 20 | grep -q "device_id 8: write-back to its backing device failed"; do
    _i=$((_i + 1))
    [ $_i -lt 30 ] || die "device 8's write-back never failed"
    sleep 1
done

r0=$(mgr_status_value nr_relocated_lines)
for i in $(seq 1 16); do
    mkfill "$(printf "\\$(printf %03o $((64 + i)))")" 4096 /tmp/blk$i
    run dd if=/tmp/blk$i of=/dev/mapper/wb9 bs=4k seek=$((i * 3)) count=1 oflag=direct 2>/dev/null
    sleep 0.5
done
sleep 2
moved=$(( $(mgr_status_value nr_relocated_lines) - r0 ))
echo "parked lines moved while device 9 wrote 16 lines: $moved"
[ $moved -le 512 ] || die "$moved parked lines were moved for 16 lines written, with room to spare"
# Device 9's lines reach its disk (the segment is sealed after 5 s idle,
# then written back past the parked lines); device 8's stay.
run wait_clean 9 60
for i in $(seq 1 16); do
    read_blocks /dev/mapper/b9 $((i * 3)) 1 /tmp/r
    cmp -s /tmp/r /tmp/blk$i || die "block $((i * 3)) of device 9's disk holds $(sector_summary /tmp/r)"
done
[ "$(cat $WB_SYSFS/devices/8/nr_dirty_caches)" -ge 3584 ] || die "device 8's parked lines were dropped"

# Device 8's disk heals: everything drains intact.
run dm_swap b8 "0 $sz linear $WB_BACKING $sz"
wait_cache_clean 120 || die "the parked data never drained"
run wbpattern check /dev/mapper/b8 --region 0:14M --ops 0 --initial gen:1000 --seed 8
for i in $(seq 1 16); do
    read_blocks /dev/mapper/wb9 $((i * 3)) 1 /tmp/r
    cmp -s /tmp/r /tmp/blk$i || die "block $((i * 3)) of device 9 reads $(sector_summary /tmp/r)"
done
echo "PASS"
