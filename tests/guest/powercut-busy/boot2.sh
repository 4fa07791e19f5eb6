. /wb/tests/lib.sh
set -e
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 $((256 * 2048))
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
dmesg | grep "replayed" || true
dd if=$WB_BACKING bs=1M skip=400 count=4 iflag=direct of=/tmp/exp 2>/dev/null
dd if=/dev/mapper/wb1 bs=1M skip=8 count=4 iflag=direct of=/tmp/got 2>/dev/null
cmp /tmp/exp /tmp/got || die "fsynced data lost in a cut during segment writes"
# The device keeps working after recovery: write, read back, drain.
dd if=/dev/urandom of=/tmp/n bs=1M count=2 2>/dev/null
run dd if=/tmp/n of=/dev/mapper/wb1 bs=4k seek=8192 oflag=direct conv=fsync 2>/dev/null
dd if=/dev/mapper/wb1 bs=4k skip=8192 count=512 iflag=direct of=/tmp/n2 2>/dev/null
cmp /tmp/n /tmp/n2 || die "new writes after recovery read back wrong"
run mgr_msg allow_migrate 1
wait_clean 1 240
dd if=$WB_BACKING bs=1M skip=8 count=4 iflag=direct of=/tmp/back 2>/dev/null
cmp /tmp/exp /tmp/back || die "backing wrong after draining"
echo "power cut during segment writes OK"
