# One dead backing disk does not stop the other device sharing its cache
# (issue 9, item 1). Two devices share a 12 MiB cache; device 2 has 2 MiB
# dirty when its disk is replaced by a dm-flakey table failing every write.
# Then:
# - device 2's write-back fails, is reported (status, sysfs, one kernel log
#   line however often it is retried) and its lines stay dirty, parked;
# - device 1 writes more than the cache's size, all of it succeeds and is
#   written back (the parked lines are moved to the head of the log);
# - device 2 still reads its data from the cache; its new writes get EIO
#   within a bounded time once it holds half the cache;
# - suspend, resume and status of device 2 do not hang;
# - once the disk is back, everything drains onto it, with the right data.
. /wb/tests/lib.sh
set -e
S=$((128 * 2048))
run mgr_create
run dm_create csmall --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run mgr_msg format_cache_device /dev/mapper/csmall
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/csmall
run dm_create back1 --table "0 $S linear $WB_BACKING 0"
run dm_create back2 --table "0 $S linear $WB_BACKING $S"
run wb_create w1 1 /dev/mapper/back1 1
run wb_create w2 2 /dev/mapper/back2 1
run mgr_msg allow_migrate 0

head -c 2097152 /dev/urandom > /tmp/d2
run dd if=/tmp/d2 of=/dev/mapper/w2 bs=1M oflag=direct
d=$(cat $WB_SYSFS/devices/2/nr_dirty_caches)
[ "$d" -ge 500 ] || die "device 2 should have about 512 dirty lines, has $d"

echo "--- device 2's disk dies"
run dmsetup suspend back2
# dm-flakey, always down, failing writes (reads still work, as on a disk
# that went read-only).
run dmsetup load back2 --table "0 $S flakey $WB_BACKING $S 0 3600 1 error_writes"
run dmsetup resume back2
run mgr_msg allow_migrate 1
i=0
while [ "$(cat $WB_SYSFS/devices/2/writeback_error)" = 0 ]; do
    i=$((i + 1))
    [ $i -le 100 ] || die "device 2's failing write-back is not reported in 20 s"
    sleep 0.2
done
assert_eq "$(cat $WB_SYSFS/devices/2/writeback_error)" -5 "sysfs writeback_error"
assert_contains "$(dmsetup status w2)" "writeback_error -5" "status of w2"
assert_contains "$(dmsetup status w1)" "writeback_error 0" "status of w1"
d=$(cat $WB_SYSFS/devices/2/nr_dirty_caches)
[ "$d" -ge 500 ] || die "device 2's dirty lines were dropped: $d left"

echo "--- device 1 writes twice the cache through it"
head -c 8388608 /dev/urandom > /tmp/d1
for off in 0 8; do
    timeout 120 dd if=/tmp/d1 of=/dev/mapper/w1 bs=1M seek=$off oflag=direct 2>/tmp/dd.err ||
        die "device 1's write at ${off} MiB failed or hung: $(cat /tmp/dd.err)"
done
wait_clean 1 90
[ "$(cat $WB_SYSFS/devices/2/nr_dirty_caches)" -ge 500 ] || die "device 2's parked lines were dropped"
r=$(mgr_status_value nr_relocated_lines)
[ "$r" -ge 500 ] || die "the parked lines were not moved to the head of the log ($r lines moved)"
for off in 0 8; do
    dd if=/dev/mapper/back1 of=/tmp/r1 bs=1M skip=$off count=8 iflag=direct 2>/dev/null
    cmp -s /tmp/r1 /tmp/d1 || die "device 1's disk lacks its data at ${off} MiB"
done
dd if=/dev/mapper/w2 of=/tmp/r2 bs=1M count=2 iflag=direct 2>/dev/null
cmp -s /tmp/r2 /tmp/d2 || die "device 2 does not read its parked data back: $(sector_summary /tmp/r2 | cut -c1-200)"

echo "--- device 2's writers get EIO once it holds half the cache"
t0=$(date +%s)
rc=0
timeout 60 dd if=/dev/zero of=/dev/mapper/w2 bs=1M seek=4 count=10 oflag=direct 2>/tmp/dd.err || rc=$?
t=$(( $(date +%s) - t0 ))
echo "dd rc $rc after $t s: $(tail -n 2 /tmp/dd.err)"
[ $rc -ne 0 ] || die "10 MiB more of device 2 were accepted into a 12 MiB cache"
[ $rc -lt 124 ] || die "device 2's writer hung (killed by timeout after $t s)"
[ $t -le 45 ] || die "device 2's writer took $t s to fail"

echo "--- commands do not hang"
run timeout 30 dmsetup suspend w2
run timeout 30 dmsetup resume w2
run timeout 10 dmsetup status
run timeout 10 dmsetup status writeboost-mgr
n=$(dmesg | grep -c "device_id 2: write-back to its backing device failed")
assert_eq "$n" 1 "kernel log lines about device 2's failure (rate limit)"
errs=$(cat $WB_SYSFS/devices/2/writeback_errors)
[ "$errs" -ge 2 ] || die "write-back of device 2 was not retried ($errs attempts)"

echo "--- the disk comes back: everything drains"
run dmsetup suspend back2
run dmsetup load back2 --table "0 $S linear $WB_BACKING $S"
run dmsetup resume back2
wait_clean 2 90
assert_eq "$(cat $WB_SYSFS/devices/2/writeback_error)" 0 "writeback_error after recovery"
dmesg | grep -q "device_id 2: write-back works again" || die "no log line for the recovery"
dd if=/dev/mapper/back2 of=/tmp/r2 bs=1M count=2 iflag=direct 2>/dev/null
cmp -s /tmp/r2 /tmp/d2 || die "device 2's disk lacks its data after the drain"
echo "backing-dead OK"
