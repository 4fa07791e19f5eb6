# With no daemon and no flush, the kernel seals an idle open RAM buffer
# after idle_seal_ms (default 5000): a few KiB written without sync reach
# the cache device (last_flushed_segment_id advances) a few seconds later
# and, with migration on, the backing device (nr_dirty_caches 0). With
# idle_seal_ms 0 the data stays in the RAM buffer; a new value takes effect
# at once; out-of-range values are refused.
. /wb/tests/lib.sh
set -e
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((64 * 2048))
c=$WB_SYSFS/caches/1
assert_eq "$(cat $c/idle_seal_ms)" 5000 "default idle_seal_ms"
run mgr_msg allow_migrate 1
now() { cut -d' ' -f1 /proc/uptime | cut -d. -f1; }
head -c 12288 /dev/urandom > /tmp/data
t0=$(now)
run dd if=/tmp/data of=/dev/mapper/wb1 bs=4k count=3 seek=100 oflag=direct 2>/dev/null
assert_eq "$(cache_value 1 last_flushed_segment_id)" 0 "the data is in the RAM buffer"
sleep 2
assert_eq "$(cache_value 1 last_flushed_segment_id)" 0 "not idle for 5 s yet"
i=0
while [ "$(cache_value 1 last_flushed_segment_id)" = 0 ]; do
    i=$((i + 1))
    [ $i -le 50 ] || die "the idle RAM buffer was not sealed within 12 s"
    sleep 0.2
done
t1=$(now)
echo "sealed after about $((t1 - t0)) s"
[ $((t1 - t0)) -ge 4 ] || die "sealed after $((t1 - t0)) s, before idle_seal_ms"
wait_clean 1 20
dd if=$WB_BACKING of=/tmp/back bs=4k count=3 skip=100 iflag=direct 2>/dev/null
cmp -s /tmp/data /tmp/back || die "the backing disk does not hold the data"

# Off: the data stays in RAM.
echo 0 > $c/idle_seal_ms
run dd if=/tmp/data of=/dev/mapper/wb1 bs=4k count=3 seek=200 oflag=direct 2>/dev/null
lf=$(cache_value 1 last_flushed_segment_id)
sleep 3
assert_eq "$(cache_value 1 last_flushed_segment_id)" "$lf" "idle_seal_ms 0 seals nothing"
assert_eq "$(cat $WB_SYSFS/devices/1/nr_dirty_caches)" 3 "the data waits in RAM"
# A new value applies at once (through the manager too).
run mgr_msg idle_seal_ms 300
wait_clean 1 10
assert_eq "$(cache_value 1 last_flushed_segment_id)" "$((lf + 1))" "sealed once"
must_fail sh -c "echo 3600001 > $c/idle_seal_ms"
must_fail mgr_msg idle_seal_ms 5s
assert_eq "$(cat $c/idle_seal_ms)" 300 "refused values change nothing"
echo "idle seal OK"
