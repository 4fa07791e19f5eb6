# breakD: a cache device with 4 KiB logical blocks (loop --sector-size
# 4096). Direct writes remap the user's bio to the cache device: unaligned
# or 512-byte writes into direct lines must not fail there.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
head -c $((64 * 1024 * 1024)) /dev/zero > /tmp/c.img
run /usr/sbin/losetup --direct-io=on -b 4096 -f /tmp/c.img; /usr/sbin/losetup -l
L=$(/usr/sbin/losetup -a | grep c.img | cut -d: -f1); echo "loop: $L"
echo "cache logical block size: $(blockdev --getss $L)"
run mgr_create
run mgr_msg format_cache_device $L
run mgr_msg switch_to 1
run mgr_msg resume_cache $L
run wb_create wb1 1 $WB_BACKING 1 $((256 * 2048))
echo "wb1 logical block size: $(blockdev --getss /dev/mapper/wb1), physical $(blockdev --getpbsz /dev/mapper/wb1)"
dd if=/dev/urandom of=/tmp/d bs=1M count=2 2>/dev/null
dd if=/tmp/d of=/dev/mapper/wb1 bs=1M count=1 oflag=direct 2>/dev/null || bad "aligned 1 MiB write failed"
dd if=/tmp/d of=/dev/mapper/wb1 bs=512 seek=$((4096 + 1)) count=2048 oflag=direct 2>/dev/null; echo "unaligned 1 MiB write rc $?"
dd if=/tmp/d of=/dev/mapper/wb1 bs=512 seek=3 count=1 oflag=direct 2>/dev/null; echo "512 B write into a direct line rc $?"
dmesg | tail -5
mgr_msg flush_current_buffer; echo "flush rc $?"
dmsetup status writeboost-mgr | grep -i error
dd if=/tmp/d of=/dev/mapper/wb1 bs=4k seek=10000 count=1 oflag=direct conv=fsync 2>/dev/null || bad "the cache stopped taking writes after 512-byte/unaligned writes on a 4Kn cache device"
dd if=/dev/mapper/wb1 bs=1M count=1 iflag=direct of=/tmp/r 2>/dev/null || bad "read failed"
dmesg | grep -i writeboost | tail -5
run dmsetup remove wb1
mgr_msg free_cache
run dmsetup remove writeboost-mgr
run /usr/sbin/losetup -d $L
[ $F = 0 ] || die "$F findings"
echo "4kn OK"
