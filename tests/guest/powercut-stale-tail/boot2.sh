# Break segment 3 after the fact, resume: the log ends at 2 and segment 4
# must be invalidated. Write new data, cut again. Segment 4 was written with
# REQ_PREFLUSH (its fsync), so its header proves segment 3 was durable: a
# broken segment 3 is lost acknowledged data, not a torn tail. Resume must
# refuse, naming it, and go on only with accept_data_loss.
. /wb/tests/lib.sh
set -e
# Segment id 3 lives in slot 2, at sector 2048 * 3: break its magic.
run dd if=/dev/zero of=$WB_CACHE bs=512 count=1 seek=$((2048 * 3)) oflag=direct conv=fsync 2>/dev/null
# The checker sees the torn segment 3 and the valid segment 4 beyond it.
if writeboost-check $WB_CACHE > /tmp/check.out 2>&1; then cat /tmp/check.out; die "writeboost-check accepted a valid segment past the end of the log"; fi
cat /tmp/check.out
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 $((256 * 2048))
run mgr_msg switch_to 1
grep -q "lost-durable-segment" /tmp/check.out || die "writeboost-check did not report the lost durable segment 3"
must_fail mgr_msg resume_cache $WB_CACHE
klog_tail 3 | grep -q "segment 3 (slot 2) is corrupt, but segment 4" || die "no clear message naming the lost segment"
assert_eq "$(dmsetup status writeboost-mgr | grep -c last_flushed)" "0" "a refused resume creates no cache"
run mgr_msg resume_cache $WB_CACHE accept_data_loss
dmesg | grep -q "invalidated 1 segments written past the end" || die "stale segment 4 was not invalidated"
assert_eq "$(mgr_status_value last_flushed_segment_id)" "2" "log ends before the torn segment"
# Segment 4's data is not visible (it was never acknowledged as durable).
dd if=$WB_BACKING bs=4k count=10 skip=$((400 * 256)) iflag=direct of=/tmp/x 2>/dev/null
dd if=/dev/mapper/wb1 bs=4k count=10 skip=4000 iflag=direct of=/tmp/r4 2>/dev/null
cmp -s /tmp/x /tmp/r4 && die "data of the segment past the end is visible"
# New segment 3 elsewhere, durable; then cut again.
run dd if=/dev/urandom of=/dev/mapper/wb1 bs=4k count=10 seek=5000 oflag=direct conv=fsync 2>/dev/null
assert_eq "$(mgr_status_value last_flushed_segment_id)" "3" "the new segment took id 3"
wb_powercut
