# A cache formatted before superblock version 5 (version 4: xxh64
# checksums, no direct lines) resumes here, and goes on being written
# without direct lines: 1 MiB writes to it are copied through RAM, its
# segments stay header version 3, writeboost-check passes and a second
# resume replays them (fails if the module wrote direct lines into a
# version 4 cache, whose headers cannot carry them).
. /wb/tests/lib.sh
set -e
size=$(sectors_of $WB_BACKING)
run wbimage /tmp/v4.img --segments 15 --device-sectors $size --lines 40 --version 4
run dd if=/tmp/v4.img of=$WB_CACHE bs=1M oflag=direct 2>/dev/null
writeboost-dump $WB_CACHE --segments none > /tmp/dump
grep -q "format v4, .*xxh64 segment checksums" /tmp/dump || { cat /tmp/dump; die "dump does not show a version 4 cache"; }
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 $size
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
klog_tail 3 | grep -q "superblock version 4" || { klog_tail 5; die "resume did not report superblock version 4"; }
run wb_set_cache wb1 1
dd if=/dev/mapper/wb1 bs=4k count=40 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/got /tmp/v4.img.expect || die "the replayed v4 log does not read back"
dd if=/dev/urandom of=/tmp/new bs=1M count=3 2>/dev/null
run dd if=/tmp/new of=/dev/mapper/wb1 bs=1M seek=1 oflag=direct 2>/dev/null
run dmsetup remove wb1
run mgr_msg free_cache
writeboost-dump $WB_CACHE > /tmp/dump
direct=$(awk '/in log/ && $6 ~ /^[0-9]+$/ { n += $6 } END { print n + 0 }' /tmp/dump)
assert_eq "$direct" "0" "direct lines in a version 4 cache"
run writeboost-check $WB_CACHE
run wb_create wb1 1 $WB_BACKING 0 $size
run mgr_msg resume_cache $WB_CACHE
run wb_set_cache wb1 1
dd if=/dev/mapper/wb1 bs=1M skip=1 count=3 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/got /tmp/new || die "1 MiB writes to the v4 cache were not replayed"
dd if=/dev/mapper/wb1 bs=4k count=40 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/got /tmp/v4.img.expect || die "the image's data after the second resume differs"
run wb_teardown_all
echo "resume v4 OK"
