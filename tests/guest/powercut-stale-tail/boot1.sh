# A valid segment past a torn one must never be replayed later. Boot 1
# writes four segments (each write + fsync seals one), then cuts.
. /wb/tests/lib.sh
set -e
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((256 * 2048))
for i in 1 2 3 4; do
    run dd if=/dev/urandom of=/dev/mapper/wb1 bs=4k count=10 seek=$((i * 1000)) oflag=direct conv=fsync 2>/dev/null
done
assert_eq "$(mgr_status_value last_flushed_segment_id)" "4" "one segment per fsynced write"
# Keep segment 4's data (X) for comparison.
run dd if=/dev/mapper/wb1 of=$WB_BACKING bs=4k count=10 skip=4000 seek=$((400 * 256)) iflag=direct oflag=direct conv=fsync 2>/dev/null
wb_powercut
