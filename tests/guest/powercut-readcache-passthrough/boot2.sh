# See boot1.sh.
. /wb/tests/lib.sh
set -e
run mgr_create
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
run mgr_msg read_cache_threshold 4
run wb_create wb1 1 $WB_BACKING 0 262144
mkfill C $((64 * 4096)) /tmp/C
run dd if=/tmp/C of=/dev/mapper/wb1 bs=4k seek=1000 oflag=direct conv=fsync 2>/dev/null
run wb_set_cache wb1 1
read_blocks /dev/mapper/wb1 1000 64 /tmp/r
cmp -s /tmp/r /tmp/C || die "attached after writing pass-through, blocks 1000..1063 (written 'C' and flushed) read $(sector_summary /tmp/r)"
# Read caching works again: the reads above staged clean lines of 'C'.
for b in $(seq 1001 2 1063); do
    dd if=/dev/mapper/wb1 of=/dev/null bs=4k skip=$b count=1 iflag=direct 2>/dev/null
done
run mgr_msg flush_current_buffer 1
read_blocks /dev/mapper/wb1 1000 64 /tmp/r
cmp -s /tmp/r /tmp/C || die "after more reads, blocks 1000..1063 read $(sector_summary /tmp/r)"
wb_powercut
