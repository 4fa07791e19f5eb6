# A cache device with 4 KiB logical blocks (a loop device with
# --sector-size 4096) under devices with 512-byte sectors: O_DIRECT reads
# of 512 bytes, and unaligned reads across lines, of data the cache holds
# on the cache device return that data. (The block layer fails a bio that
# is not aligned to a disk's logical blocks; the module reads whole blocks
# and copies the part asked for.) The 2013 form after a replay, and the
# 2.2 form.
. /wb/tests/lib.sh
set -e
head -c $((64 * 1024 * 1024)) /dev/zero > /tmp/c.img
run /usr/sbin/losetup -b 4096 -f /tmp/c.img
L=$(/usr/sbin/losetup -a | grep c.img | cut -d: -f1)
assert_eq "$(blockdev --getss $L)" 4096 "logical block size of the loop device"
dd if=/dev/urandom of=/tmp/d bs=64k count=4 2>/dev/null

# dump <file or device> <byte offset> <bytes> [-d]: a hex dump without
# the offset column (xfs_io pread -v; -d: O_DIRECT).
dump() {
    xfs_io $4 -c "pread -v $2 $3" "$1" | grep -E "^[0-9a-f]+:  " | cut -d: -f2-
}

# check <device> <what>: O_DIRECT reads at 1 MiB + off, of len bytes,
# against /tmp/d at off.
check() {
    for spec in "512 512" "0 512" "3584 1024" "4096 512" "7680 8704" "1536 131072" "512 200704"; do
        set -- $spec
        dump /dev/mapper/$dev $((1048576 + $1)) $2 -d > /tmp/got 2>/tmp/err || true
        grep -qi "error" /tmp/err /tmp/got && die "$what: O_DIRECT read of $2 bytes at byte $1 failed: $(cat /tmp/err)"
        dump /tmp/d $1 $2 > /tmp/want
        [ -s /tmp/want ] || die "reference dump empty"
        cmp -s /tmp/got /tmp/want || die "$what: wrong data for $2 bytes at byte $1"
    done
    echo "$what: reads OK"
}

# The 2013 form: 4 KiB and 64 KiB writes (RAM buffer and direct writes)
# at 1 MiB of the device, flushed; free_cache and a replay, so the reads
# go to the cache device.
run mgr_create
run mgr_msg format_cache_device $L
run mgr_msg switch_to 1
run mgr_msg resume_cache $L
run wb_create wb1 1 $WB_BACKING 1 $((64 * 2048))
run xfs_io -d -c "pwrite -q -i /tmp/d -s 0 1048576 4096" -c "pwrite -q -i /tmp/d -s 4096 1052672 61440" \
    -c "pwrite -q -b 65536 -i /tmp/d -s 65536 1114112 196608" -c fsync /dev/mapper/wb1
dev=wb1 what="2013 form, RAM buffers"; check
run dmsetup remove wb1
run mgr_msg free_cache
run wb_create wb1 1 $WB_BACKING 0 $((64 * 2048))
run mgr_msg switch_to 1
run mgr_msg resume_cache $L
dirty=$(dmsetup status writeboost-mgr | sed -n 's/^nr_dirty_caches: //p')
[ "$dirty" -ge 64 ] || die "expected the 256 KiB dirty in the cache after the replay, nr_dirty_caches $dirty"
dev=wb1 what="2013 form, after the replay"; check
run dmsetup remove wb1
run mgr_msg free_cache
run dmsetup remove writeboost-mgr

# The 2.2 form on the same loop device (zeroed: formatted at load).
dd if=/dev/zero of=$L bs=4k count=1 2>/dev/null
run dm_create wb22 --table "0 $((64 * 2048)) writeboost $WB_BACKING $L"
run xfs_io -d -c "pwrite -q -b 65536 -i /tmp/d -s 0 1048576 262144" -c fsync /dev/mapper/wb22
dev=wb22 what="2.2 form"; check
# Removed and created again: the replay leaves the data on the cache
# device only.
run dmsetup remove wb22
run dm_create wb22 --table "0 $((64 * 2048)) writeboost $WB_BACKING $L"
dev=wb22 what="2.2 form, after the replay"; check
run dmsetup remove wb22
run /usr/sbin/losetup -d $L
dmesg | grep -q "read of the cache device at sector" && die "a bounced read failed"
echo "cache-4kn OK"
