# breakD: discards of ranges with direct lines in the open segment and in
# written segments, small writes into the discarded range, checks at every
# stage (open, after flush, after a re-resume, after write-back).
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
run cache_setup
run dm_create b1 --table "0 $((64 * 2048)) linear $WB_BACKING 0"
run wb_create wb1 1 /dev/mapper/b1 1
dd if=/dev/urandom of=/tmp/D bs=1M count=4 2>/dev/null
dd if=/dev/urandom of=/tmp/S bs=4k count=8 2>/dev/null
dd if=/dev/urandom of=/tmp/O bs=1M count=4 2>/dev/null
# old flushed data under everything
run dd if=/tmp/O of=/dev/mapper/wb1 bs=1M count=4 oflag=direct conv=fsync
run mgr_msg flush_current_buffer
run dd if=/tmp/D of=/dev/mapper/wb1 bs=1M count=4 oflag=direct
run blkdiscard -o $((256*1024)) -l $((256*1024)) /dev/mapper/wb1
run blkdiscard -o $((1024*1024 + 4096)) -l $((1024*1024)) /dev/mapper/wb1
run dd if=/tmp/S of=/dev/mapper/wb1 bs=4k count=1 seek=75 oflag=direct
run dd if=/tmp/S of=/dev/mapper/wb1 bs=512 skip=9 count=3 seek=$((300*2+1)) oflag=direct
run dd if=/tmp/S of=/dev/mapper/wb1 bs=64k count=1 seek=20 oflag=direct 2>/dev/null || true
# expected: D, with discarded ranges = what the backing disk returns, then S writes.
cp /tmp/D /tmp/E
dd if=/dev/mapper/b1 bs=4k skip=64 count=64 iflag=direct of=/tmp/E bs=4k seek=64 conv=notrunc 2>/dev/null
dd if=/dev/mapper/b1 bs=4k skip=257 count=256 iflag=direct of=/tmp/E seek=257 conv=notrunc 2>/dev/null
dd if=/tmp/S of=/tmp/E bs=4k count=1 seek=75 conv=notrunc 2>/dev/null
dd if=/tmp/S of=/tmp/E bs=512 skip=9 count=3 seek=$((300*2+1)) conv=notrunc 2>/dev/null
head -c 32768 /tmp/S > /tmp/S32; cat /tmp/S32 /tmp/S32 > /tmp/S64
dd if=/tmp/S64 of=/tmp/E bs=64k count=1 seek=20 conv=notrunc 2>/dev/null
dd if=/tmp/S64 of=/dev/mapper/wb1 bs=64k count=1 seek=20 oflag=direct 2>/dev/null
chk() {
    dd if=/dev/mapper/wb1 bs=1M count=4 iflag=direct of=/tmp/R 2>/dev/null
    cmp /tmp/R /tmp/E >/tmp/cmp 2>&1 || { head -3 /tmp/cmp; bad "$1: wb1 differs"; }
}
chk open
run mgr_msg flush_current_buffer
chk flushed
# discard again over written segments (direct lines on disk), rewrite part
run blkdiscard -o $((2*1024*1024)) -l $((512*1024)) /dev/mapper/wb1
dd if=/dev/mapper/b1 bs=4k skip=512 count=128 iflag=direct of=/tmp/E seek=512 conv=notrunc 2>/dev/null
run dd if=/tmp/S of=/dev/mapper/wb1 bs=4k count=8 seek=520 oflag=direct
dd if=/tmp/S of=/tmp/E bs=4k count=8 seek=520 conv=notrunc 2>/dev/null
chk "second discard"
run dmsetup remove wb1
run mgr_msg free_cache
writeboost-check $WB_CACHE || bad "writeboost-check"
run wb_create wb1 1 /dev/mapper/b1 0
run mgr_msg resume_cache $WB_CACHE
run wb_set_cache wb1 1
chk "after resume"
run mgr_msg allow_migrate 1
run mgr_msg flush_current_buffer
wait_clean 1 200
chk "after write-back"
dd if=/dev/mapper/b1 bs=1M count=4 iflag=direct of=/tmp/R 2>/dev/null
cmp /tmp/R /tmp/E > /tmp/cmp 2>&1 || { head -3 /tmp/cmp; bad "backing differs after write-back"; }
[ $F = 0 ] || die "$F findings"
echo "discard OK"
