# The old segment 4 must not be replayed after the new segment 3.
. /wb/tests/lib.sh
set -e
run writeboost-check $WB_CACHE
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 $((256 * 2048))
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
assert_eq "$(mgr_status_value last_flushed_segment_id)" "3" "log after the second cut"
dd if=$WB_BACKING bs=4k count=10 skip=$((400 * 256)) iflag=direct of=/tmp/x 2>/dev/null
dd if=/dev/mapper/wb1 bs=4k count=10 skip=4000 iflag=direct of=/tmp/r4 2>/dev/null
cmp -s /tmp/x /tmp/r4 && die "stale segment 4 was replayed after the rewritten segment 3"
echo "stale tail OK"
