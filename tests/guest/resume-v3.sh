# A cache formatted by the module before superblock version 4 (version 3:
# CRC32C segment checksums) resumes here, its log replayed, and goes on
# being written with CRC32C: after a free_cache and another resume the new
# writes are replayed too, and writeboost-check finds every segment valid.
# (A cache formatted now is version 5, xxh64 with direct lines: every other test.)
. /wb/tests/lib.sh
set -e
size=$(sectors_of $WB_BACKING)
# Segment 1 holds 40 dirty lines of device 1 (blocks 0..39).
run wbimage /tmp/v3.img --segments 15 --device-sectors $size --lines 40 --crc32c
run dd if=/tmp/v3.img of=$WB_CACHE bs=1M oflag=direct 2>/dev/null
writeboost-dump $WB_CACHE --segments none > /tmp/dump
grep -q "format v3, .*crc32c segment checksums" /tmp/dump || { cat /tmp/dump; die "dump does not show a version 3 cache"; }
dd if=/dev/zero of=$WB_BACKING bs=4k count=512 oflag=direct 2>/dev/null
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 $size
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
run mgr_msg allow_migrate 0
klog_tail 3 | grep -q "superblock version 3" || { klog_tail 5; die "resume did not report superblock version 3"; }
run wb_set_cache wb1 1
dd if=/dev/mapper/wb1 bs=4k count=40 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/got /tmp/v3.img.expect || die "the replayed v3 log does not read back"

# New writes: 1.2 MiB, so at least one full segment is written by the
# module (CRC32C, as the superblock says), then a partial one at free.
dd if=/dev/urandom of=/tmp/new bs=4k count=300 2>/dev/null
run dd if=/tmp/new of=/dev/mapper/wb1 bs=4k seek=100 oflag=direct 2>/dev/null
run dmsetup remove wb1
run mgr_msg free_cache
run writeboost-check $WB_CACHE
run wb_create wb1 1 $WB_BACKING 0 $size
run mgr_msg resume_cache $WB_CACHE
klog_tail 3 | grep -q "replayed [1-9][0-9]* segments" || { klog_tail 5; die "nothing replayed"; }
run wb_set_cache wb1 1
dd if=/dev/mapper/wb1 bs=4k count=40 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/got /tmp/v3.img.expect || die "the image's data after the second resume differs"
dd if=/dev/mapper/wb1 bs=4k skip=100 count=300 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/got /tmp/new || die "data the module wrote to the v3 cache was not replayed"
[ "$(cat $WB_SYSFS/devices/1/nr_dirty_caches)" -gt 0 ] || die "nothing dirty: the test did not replay the module's segments"
run wb_teardown_all
