. /wb/tests/lib.sh
set -e
run mgr_create
run dm_create smallcache --table "0 $((8 * 2048)) linear $WB_CACHE 0"
run wb_create wb1 1 $WB_BACKING 0 $((256 * 2048))
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/smallcache
dd if=$WB_BACKING bs=1M skip=400 count=24 iflag=direct of=/tmp/exp 2>/dev/null
# The second burst rewrote 4 MiB at offset 4 MiB + 24 MiB with the first
# 4 MiB of the data.
dd if=/tmp/exp bs=1M count=4 of=/tmp/exp2 2>/dev/null
dd if=/dev/mapper/wb1 bs=1M skip=4 count=24 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/exp /tmp/got || die "first burst wrong after the cut"
dd if=/dev/mapper/wb1 bs=1M skip=28 count=4 iflag=direct of=/tmp/got2 2>/dev/null
cmp /tmp/exp2 /tmp/got2 || die "second (flushed) burst wrong after the cut"
run mgr_msg allow_migrate 1
wait_clean 1
dd if=$WB_BACKING bs=1M skip=4 count=24 iflag=direct of=/tmp/back 2>/dev/null
cmp /tmp/exp /tmp/back || die "backing wrong after draining"
echo "powercut during migration OK"
