# A flushed line overwritten by a write that is not durable yet, then the
# flushed line's segment migrated, then a power cut. The flushed data (or
# the newer data) must survive: never zeroes, never a hole.
#
# Cache 1 on $WB_CACHE, devices 1 (wb1 over the start of $WB_BACKING) and 2
# (wb2, its own slice of the disk), migration off until the overwrites:
#   V1  wb1 block 100: 4 KiB 'A' + fsync (segment 1), 4 KiB 'B' without fsync
#       (stays in the open RAM segment), migrate segment 1, cut;
#   V2  wb1 block 200: 4 KiB 'A' + fsync, then 512 B 'b' over its sector 3;
#   V4  wb2 blocks 0..299: 'D' + fsync (more than a segment), then 'E' over
#       blocks 0..99 without fsync, in the open segment with V1 and V2.
# Cache 2 on a slice of the slow disk behind dm-delay, device 3 (wb3):
#   V3  wb3 block 300: 'A' + fsync, 'B' without fsync, migrate segment 1
#       (and wait for its record to land), then delay the cache device's
#       writes by 4 s and fill more than a segment, so that the segment
#       holding 'B' is sealed and its write is still in flight at the cut.
. /wb/tests/lib.sh
set -e
SZ1=262144                       # wb1: first 128 MiB of the slow disk
run cache_setup
run mgr_msg idle_seal_ms 0       # the overwrites must stay in RAM
run wb_create wb1 1 $WB_BACKING 1 $SZ1
run dm_create back2 --table "0 131072 linear $WB_BACKING 262144"
run dm_create back3 --table "0 131072 linear $WB_BACKING 393216"
run dm_create c2raw --table "0 131072 linear $WB_BACKING 524288"
run wb_create wb2 2 /dev/mapper/back2 1
run mgr_msg allow_migrate 0
mkfill A 4096 /tmp/A; mkfill B 4096 /tmp/B
mkfill D $((300 * 4096)) /tmp/D; mkfill E $((100 * 4096)) /tmp/E

# Every first version, flushed.
run dd if=/tmp/A of=/dev/mapper/wb1 bs=4k seek=100 count=1 oflag=direct conv=fsync 2>/dev/null
echo "after the first fsync: last_flushed_segment_id $(cache_value 1 last_flushed_segment_id)"
run dd if=/tmp/A of=/dev/mapper/wb1 bs=4k seek=200 count=1 oflag=direct conv=fsync 2>/dev/null
run dd if=/tmp/D of=/dev/mapper/wb2 bs=4k seek=0 oflag=direct conv=fsync 2>/dev/null
F=$(cache_value 1 last_flushed_segment_id)
# The overwrites, not flushed.
run dd if=/tmp/B of=/dev/mapper/wb1 bs=4k seek=100 count=1 oflag=direct 2>/dev/null
# fio, not dd: busybox dd silently falls back to buffered I/O for 512 B
# blocks, which turns this into a 4 KiB read-modify-write.
run fio --name=v2 --filename=/dev/mapper/wb1 --direct=1 --rw=write --bs=512 --size=512 \
    --offset=$(((200 * 8 + 3) * 512)) --buffer_pattern=0x62 --output=/dev/null
run dd if=/tmp/E of=/dev/mapper/wb2 bs=4k seek=0 oflag=direct 2>/dev/null
read_blocks /dev/mapper/wb1 100 1 /tmp/r
cmp -s /tmp/r /tmp/B || die "wb1 block 100 does not read back the write just acknowledged: $(sector_summary /tmp/r)"
read_blocks /dev/mapper/wb1 200 1 /tmp/r
assert_eq "$(sector_summary /tmp/r)" "sectors: 3 x 41, 1 x 62, 4 x 41" "wb1 block 200 after the 512 B write"
# Migrate every flushed segment (1..F); the overwrites stay in RAM.
run mgr_msg allow_migrate 1
wait_migrated 1 "$F" 30 || echo "note: cache 1 did not migrate up to segment $F within 30 s"
sleep 2    # let the record written after the round land
run mgr_msg allow_migrate 0
echo "cache 1 before the cut: last_flushed $(cache_value 1 last_flushed_segment_id), last_migrated $(cache_value 1 last_migrated_segment_id), flushed first versions up to $F"

# V3 on cache 2, on a dm-delay device (no delay for now).
run mgr_msg format_cache_device /dev/mapper/c2raw
run dm_create c2 --table "0 131072 delay /dev/mapper/c2raw 0 0"
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/c2
run mgr_msg idle_seal_ms 0
run wb_create wb3 3 /dev/mapper/back3 2
run mgr_msg allow_migrate 0
run dd if=/tmp/A of=/dev/mapper/wb3 bs=4k seek=300 count=1 oflag=direct conv=fsync 2>/dev/null
F2=$(cache_value 2 last_flushed_segment_id)
run dd if=/tmp/B of=/dev/mapper/wb3 bs=4k seek=300 count=1 oflag=direct 2>/dev/null
run mgr_msg allow_migrate 1
wait_migrated 2 "$F2" 20 || echo "note: cache 2 did not migrate up to segment $F2 within 20 s"
sleep 2    # let the record written after the round land
run mgr_msg allow_migrate 0
# From now on the cache device's writes (and flushes) land 4 s after they
# are issued. Then seal the segment holding 'B': its write stays in dm-delay.
mkfill F $((300 * 4096)) /tmp/F
echo "0 131072 delay /dev/mapper/c2raw 0 0 /dev/mapper/c2raw 0 4000" | run dmsetup load c2
run dmsetup suspend c2
run dmsetup resume c2
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/tmp/F of=/dev/mapper/wb3 bs=4k seek=1000 count=300 oflag=direct 2>/dev/null
echo "cache 2 before the cut: last_flushed $(cache_value 2 last_flushed_segment_id), last_migrated $(cache_value 2 last_migrated_segment_id), current $(mgr_status_value 'current segment id'); fill took $t0 -> $(cut -d' ' -f1 /proc/uptime) s"
sleep 0.3    # let the console print it
wb_powercut
