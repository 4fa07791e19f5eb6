# A dead disk's device keeps writing a block now and then (accepted: it
# holds far less than half the cache), so its parked lines end up spread
# thin through the log, between a healthy device's lines; the healthy
# device writes three times the cache. Both keep getting room, and the
# parked lines are moved about once per lap, packed. With the first
# version of write-back past parked lines, each relocation got a segment
# of its own (the segment's opening cleared the writers' urgency, so the
# next job sealed it): the thin parked lines were moved into segments as
# thin as the ones they left, round the log for ever, and the healthy
# device got no room at all (the host test
# a_failing_device_writes_while_the_log_is_full_of_clean_segments).
. /wb/tests/lib.sh
set -e
run pair_setup
run mgr_msg allow_migrate 1
run dm_swap b8 "0 $sz error"
mkfill P 4096 /tmp/p8
# Device 8: a block every 0.1 s until /tmp/stop (its writes are accepted
# into the cache; its write-back fails from the first round on).
( i=0; while [ ! -e /tmp/stop ]; do
    dd if=/tmp/p8 of=/dev/mapper/wb8 bs=4k seek=$i count=1 oflag=direct 2>/dev/null || echo "device 8's write $i failed" >> /tmp/w8err
    i=$((i + 1)); echo $i > /tmp/w8n; sleep 0.1
done ) &
r0=$(mgr_status_value nr_relocated_lines)
t0=$(date +%s)
# Device 9: 96 MiB of 4 KiB writes (three times the 31 MiB cache), in
# 1 MiB pieces 0.1 s apart (so that write-back keeps up and device 8's
# writes land between its lines): a 48 MiB region written through twice.
rc=0
for k in $(seq 0 95); do
    timeout 60 wbpattern write /dev/mapper/wb9 --region $((k % 48))M:1M --ops 256 --sizes 4K --sequential --seed $k --gen-base $((100 + k)) > /dev/null || { rc=$?; break; }
    sleep 0.1
done
t=$(( $(date +%s) - t0 ))
touch /tmp/stop
wait
moved=$(( $(mgr_status_value nr_relocated_lines) - r0 ))
n8=$(cat /tmp/w8n)
e8=$(cat /tmp/w8err 2>/dev/null | wc -l)
echo "device 9: 24576 writes in $t s (status $rc); device 8: $n8 writes, $e8 failed; parked lines moved: $moved"
[ $rc = 0 ] || { klog_tail 5; die "device 9's writes failed (status $rc)"; }
[ $moved -le 49152 ] || die "$moved parked lines moved for 24576 lines written"
# (Device 8's writes fail at once whenever the log has no room at that
# moment: a failing device's writers must not wait for room.)
[ $e8 -le $((n8 / 2)) ] || die "device 8's writes failed $e8 times of $n8"
check9() { # check9 <dev>: the second pass over the 48 pieces
    for k in $(seq 48 95); do
        wbpattern check $1 --region $((k % 48))M:1M --ops 256 --sizes 4K --sequential --seed $k --gen-base $((100 + k)) > /dev/null || die "piece $k of device 9 on $1 is wrong"
    done
}
check9 /dev/mapper/wb9

# The disk heals: everything drains, device 8's blocks are on its disk.
run dm_swap b8 "0 $sz linear $WB_BACKING $sz"
wait_cache_clean 120 || die "the parked data never drained"
read_blocks /dev/mapper/b8 0 1 /tmp/r
cmp -s /tmp/r /tmp/p8 || die "device 8's first block on its disk: $(sector_summary /tmp/r)"
check9 /dev/mapper/b9
echo "PASS"
