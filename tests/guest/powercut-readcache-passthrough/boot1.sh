# Read caching, then a power cut, then writes through a pass-through device
# before it attaches: the log's clean lines (copies of what the disk held
# before the cut) must never shadow those writes.
#   boot 1: 'A' x 64 blocks at block 1000 on the disk; device 1 on cache 1
#   with read caching reads every other block of them (clean lines), the
#   segment is made durable, power cut.
#   boot 2: cache 1 resumed; device 1 created with cache_id 0, 'C' written
#   over the blocks and flushed; then attached to cache 1: every block
#   must read 'C', also after a second power cut (boot 3).
. /wb/tests/lib.sh
set -e
run cache_setup
run mgr_msg read_cache_threshold 4
mkfill A $((64 * 4096)) /tmp/A
run dd if=/tmp/A of=$WB_BACKING bs=4k seek=1000 oflag=direct conv=fsync 2>/dev/null
run wb_create wb1 1 $WB_BACKING 1 262144
for b in $(seq 1000 2 1063); do
    dd if=/dev/mapper/wb1 of=/dev/null bs=4k skip=$b count=1 iflag=direct 2>/dev/null
done
n=$(mgr_status_value nr_clean_caches)
[ "$n" -ge 16 ] || die "only $n of 32 single-block reads became clean lines"
run mgr_msg flush_current_buffer 1
echo "clean lines $n, last_flushed_segment_id $(cache_value 1 last_flushed_segment_id)"
read_blocks /dev/mapper/wb1 1000 64 /tmp/r
cmp -s /tmp/r /tmp/A || die "before the cut, blocks 1000..1063 read $(sector_summary /tmp/r)"
wb_powercut
