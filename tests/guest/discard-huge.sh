# A whole-device discard of a 64 TiB sparse device (what mkfs does first)
# costs what the cache holds, not the size of the range. The backing device
# is the slow disk followed by dm-zero up to 64 TiB; the cache holds 4 KiB
# blocks spread over it (one per MiB at the start, at 1, 16 and 48 TiB,
# the last block), flushed and in the RAM buffer. blkdiscard of the whole
# writeboost device must finish within 20 s (it used to look up every
# 4 KiB block of the range, 1 MiB at a time), drop exactly the cached data
# of the device (nr_dirty_caches 0; nothing was written back, so it reads
# zeroes), and the drops it logged must be replayed by a resume (still
# nothing dirty).
. /wb/tests/lib.sh
set -e
BIG=$((64 << 31))                       # 64 TiB in sectors
VDA=$(sectors_of $WB_BACKING)
printf '0 %s linear %s 0\n%s %s zero\n' $VDA $WB_BACKING $VDA $((BIG - VDA)) | dmsetup create big
dmsetup mknodes big
assert_eq "$(sectors_of /dev/mapper/big)" "$BIG" "backing size"
now() { cut -d' ' -f1 /proc/uptime; }
t0=$(now)
run timeout -s KILL 20 blkdiscard /dev/mapper/big
echo "bare 64 TiB device: blkdiscard $t0 -> $(now) s"

run cache_setup
run wb_create wb1 1 /dev/mapper/big 1
run mgr_msg allow_migrate 0
dm=dm-$(dmsetup info -c --noheadings -o minor wb1 | tr -d ' ')
echo "wb1 ($dm): discard_max_bytes $(cat /sys/block/$dm/queue/discard_max_bytes)"
head -c 4096 /dev/zero > /tmp/zero
# 66 blocks of 0x5a, one per 1 MiB chunk at the start (flushed: their drops
# must be logged, more than one segment header holds), 6 more in the RAM
# buffer, 4 far away in the dm-zero part (at 1, 16 and 48 TiB, the last
# block).
run fio --name=spread --filename=/dev/mapper/wb1 --direct=1 --rw=write:1020k --bs=4k \
    --size=66M --buffer_pattern=0x5a --output=/dev/null
run mgr_msg flush_current_buffer
head -c 4096 /dev/zero | tr '\000' '\132' > /tmp/b
far="$((1 << 28)) $((1 << 32)) $((3 << 32)) $((BIG / 8 - 1))"
for b in 16896 17152 17408 17664 17920 18176 $far; do
    dd if=/tmp/b of=/dev/mapper/wb1 bs=4k seek=$b count=1 oflag=direct 2>/dev/null
done
n=$((66 + 6 + 4))
assert_eq "$(cat $WB_SYSFS/devices/1/nr_dirty_caches)" "$n" "dirty lines before the discard"
# The first 72 MiB: 72 blocks of bytes 0x5a (or zeroes) at 1 MiB strides.
check72() {
    fio --name=check --filename=/dev/mapper/wb1 --direct=1 --rw=read:1020k --bs=4k \
        --size=72M --verify=pattern --verify_pattern=$1 --verify_fatal=1 \
        --output=/tmp/check.out || { cat /tmp/check.out; die "$2"; }
}
far_ok() {
    for b in $far; do
        read_blocks /dev/mapper/wb1 $b 1 /tmp/r
        same_as_one_of /tmp/r "$@" || die "far block $b: $(sector_summary /tmp/r)"
    done
}
check72 0x5a "the data does not read back before the discard"
far_ok /tmp/b
seg0=$(mgr_status_value "current segment id")

t0=$(now)
run timeout -s KILL 20 blkdiscard /dev/mapper/wb1
t1=$(now)
echo "writeboost over 64 TiB with $n cached blocks: blkdiscard $t0 -> $t1 s; current segment id $seg0 -> $(mgr_status_value 'current segment id')"
assert_eq "$(cat $WB_SYSFS/devices/1/nr_dirty_caches)" 0 "dirty lines after the whole-device discard"
# Nothing was written back: the slow disk and dm-zero hold zeroes.
check72 0x00 "the discarded data still reads"
far_ok /tmp/zero
# Replay applies the logged drops: nothing comes back.
run dmsetup remove wb1
run mgr_msg free_cache
run mgr_msg resume_cache $WB_CACHE
assert_eq "$(mgr_status_value nr_dirty_caches)" 0 "dirty lines after the resume"
run wb_create wb1 1 /dev/mapper/big 1
# New data after the discard reads back and is cached.
b=$((1 << 32))
dd if=/tmp/b of=/dev/mapper/wb1 bs=4k seek=$b count=1 oflag=direct 2>/dev/null
read_blocks /dev/mapper/wb1 $b 1 /tmp/r
cmp -s /tmp/r /tmp/b || die "a write after the discard does not read back"
assert_eq "$(cat $WB_SYSFS/devices/1/nr_dirty_caches)" 1 "the new write is cached"
echo "discard of 64 TiB OK"
