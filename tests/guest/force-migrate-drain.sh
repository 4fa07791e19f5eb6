# force_migrate drains everything, the open RAM buffer included: with
# migration off, no daemon and data only in the RAM buffer, force_migrate 1
# writes it back (nr_dirty_caches reaches 0) and the backing disk holds it.
. /wb/tests/lib.sh
set -e
run cache_setup
run mgr_msg idle_seal_ms 0       # only force_migrate may drain the RAM buffer
run wb_create wb1 1 $WB_BACKING 1 $((64 * 2048))
run mgr_msg allow_migrate 0
run dd if=/dev/urandom of=/tmp/data bs=4k count=20 2>/dev/null
run dd if=/tmp/data of=/dev/mapper/wb1 bs=4k count=20 seek=300 oflag=direct 2>/dev/null
assert_eq "$(mgr_status_value last_flushed_segment_id)" "0" "the data is only in the RAM buffer"
[ "$(mgr_status_value nr_dirty_caches)" -eq 20 ] || die "expected 20 dirty lines"
run mgr_msg force_migrate 1
i=0
while [ "$(mgr_status_value nr_dirty_caches)" -ne 0 ]; do
    i=$((i + 1))
    [ $i -le 100 ] || die "force_migrate did not drain the RAM buffer in 10 s (nr_dirty_caches $(mgr_status_value nr_dirty_caches))"
    sleep 0.1
done
run mgr_msg force_migrate 0
dd if=$WB_BACKING of=/tmp/back bs=4k count=20 skip=300 iflag=direct 2>/dev/null
cmp -s /tmp/data /tmp/back || die "the backing disk does not hold the drained data"
# Detach works at once now.
run wb_set_cache wb1 0
echo "force_migrate drain OK"
