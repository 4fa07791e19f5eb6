# Reads remapped to the cache device stay in flight for 100 ms each (a
# dm-delay under the cache) while the device is detached by a reload of
# its live table (the cache cannot be freed between the load and the
# resume, while reads still go to it), the cache freed, resumed and
# attached again: no crash, and every read, running all along, returns
# the right data.
. /wb/tests/lib.sh
set -e
csz=$((16 * 2048))
dsz=$((16 * 2048))
run dm_create cdelay --table "0 $csz delay $WB_CACHE 0 0"
run mgr_create
run mgr_msg format_cache_device /dev/mapper/cdelay
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdelay
run wb_create wb1 1 $WB_BACKING 1 $dsz
dd if=/dev/urandom of=/tmp/data bs=1M count=2 2>/dev/null
table_of() { echo "0 $dsz writeboost 1 $WB_BACKING $1"; }
set_delay() {
    echo "0 $csz delay $WB_CACHE 0 $1" | dmsetup load cdelay || return 1
    dmsetup resume cdelay
}
fill() {
    run dd if=/tmp/data of=/dev/mapper/wb1 bs=1M oflag=direct 2>/dev/null
    run mgr_msg flush_current_buffer
}
fill
run set_delay 100

rm -f /tmp/stop /tmp/bad
for r in 1 2; do
    (
        n=0
        while [ ! -f /tmp/stop ]; do
            dd if=/dev/mapper/wb1 bs=1M count=2 iflag=direct 2>/dev/null | cmp -s - /tmp/data || echo "reader $r, pass $n" >> /tmp/bad
            n=$((n + 1))
        done
        echo "reader $r: $n passes"
    ) &
done

for round in 1; do
    sleep 0.5
    run mgr_msg allow_migrate 1
    i=0
    # Refused (EBUSY) while dirty; accepted once migration is done.
    until table_of 0 | dmsetup load wb1 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 300 ] || die "the device never became clean"
        sleep 0.1
    done
    # Loaded, not resumed: the device is still bound, reads still go to
    # the cache, so the cache cannot be freed under them.
    must_fail mgr_msg free_cache
    klog_tail 3 | grep -q "still serves device ids 1" || die "free_cache of a cache with a loaded detach: no clear message"
    run dmsetup resume wb1
    assert_eq "$(cat $WB_SYSFS/devices/1/cache_id)" 0 "cache_id after the detach (round $round)"
    run mgr_msg free_cache
    sleep 0.5
    run set_delay 0
    run mgr_msg resume_cache /dev/mapper/cdelay
    run set_delay 100
    table_of 1 | run dmsetup load wb1
    run dmsetup resume wb1
    fill
done
sleep 0.5
touch /tmp/stop
wait
[ -f /tmp/bad ] && die "reads returned wrong data: $(cat /tmp/bad)"
run set_delay 0
run mgr_msg allow_migrate 1
wait_clean 1 60
echo "reload inflight OK"
