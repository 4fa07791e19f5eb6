# A removed device whose backing disk another table still holds (DM tables
# may share a disk), so the cache cannot claim it: the cache writes nothing
# to that disk while the other table holds it (its write-back is paused;
# nothing it writes there is overwritten meanwhile). Once the other table
# is gone, the retried claim succeeds and the removed device's
# acknowledged data is written back. A device of the id created again ends
# the pause at once.
. /wb/tests/lib.sh
set -e
run cache_setup
sz=$((16 * 2048))
run dm_create back --table "0 $sz linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/back bs=1M count=16 oflag=direct 2>/dev/null
run dd if=/dev/urandom of=/tmp/a bs=4k count=64 2>/dev/null
run dd if=/dev/urandom of=/tmp/b bs=4k count=64 2>/dev/null

# What a read of the 64 blocks holds, for messages.
what() {
    if cmp -s "$1" /tmp/a; then echo "device 7's data"
    elif cmp -s "$1" /tmp/b; then echo "the other table's data"
    else echo "neither table's data"; fi
}

# The kernel log since setup_removed's removal.
since_mark() {
    klog_since
}

# dirty_is <n>: device 7's data in the cache is still <n> lines (nothing else
# of it is written back).
dirty_is() {
    mgr_msg switch_to 1
    assert_eq "$(mgr_status_value nr_dirty_caches)" "$1" "dirty lines of cache 1"
}

# Device 7 writes A (fsynced), then its table is removed while another
# table ("other") shares the disk.
setup_removed() {
    run wb_create wb7 7 /dev/mapper/back 1
    run dd if=/tmp/a of=/dev/mapper/wb7 bs=4k count=64 seek=100 oflag=direct conv=fsync 2>/dev/null
    run dm_create other --table "0 $sz linear /dev/mapper/back 0"
    klog_mark
    run dmsetup remove wb7
    since_mark | grep -q "cache 1: cannot claim backing device .* of removed device_id 7 (error -16: another table or user holds it): write-back of the id's 64 dirty lines is paused" \
        || { since_mark | tail -5; die "no message that device 7's write-back is paused"; }
}

# 1. While "other" holds the disk, nothing is written back over what it
# writes, however hard migration is pushed.
setup_removed
run dd if=/tmp/b of=/dev/mapper/other bs=4k count=64 seek=100 oflag=direct conv=fsync 2>/dev/null
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
sleep 4
read_blocks /dev/mapper/other 100 64 /tmp/r
cmp -s /tmp/r /tmp/b || die "write-back overwrote what the other table wrote: it holds $(what /tmp/r)"
dirty_is 64
since_mark | grep -q "cache 1: device_id 7: write-back paused: another table or user holds its backing device; its 64 dirty lines stay in the cache" \
    || { since_mark | tail -5; die "no message that the write-back of device 7 waits"; }
run mgr_msg force_migrate 0

# 2. The other table goes: the retried claim succeeds (the first retries
# come after 1, 2, 4 ... s) and device 7's data is written back.
run dmsetup remove other
i=0
until since_mark | grep -q "cache 1: claimed backing device .* of removed device_id 7: its write-back goes on"; do
    i=$((i + 1)); [ $i -lt 60 ] || die "the cache never claimed device 7's disk after the other table went"
    sleep 1
done
i=0
until [ "$(mgr_msg switch_to 1 && mgr_status_value nr_dirty_caches)" = 0 ]; do
    i=$((i + 1)); [ $i -lt 60 ] || die "device 7's data not written back after the claim"
    sleep 1
done
read_blocks /dev/mapper/back 100 64 /tmp/r
cmp -s /tmp/r /tmp/a || die "the disk does not hold device 7's written-back data: it holds $(what /tmp/r)"

# 3. Paused again, then device 7 is created over the disk again: its data
# reads back at once and is written back through its own table.
run mgr_msg allow_migrate 0
setup_removed
run dmsetup remove other
run wb_create wb7 7 /dev/mapper/back 1
read_blocks /dev/mapper/wb7 100 64 /tmp/r
cmp -s /tmp/r /tmp/a || die "device 7 re-created does not read its data: it holds $(what /tmp/r)"
run mgr_msg allow_migrate 1
wait_clean 7 60
run dmsetup remove wb7
read_blocks /dev/mapper/back 100 64 /tmp/r
cmp -s /tmp/r /tmp/a || die "device 7's data not on its disk after write-back: it holds $(what /tmp/r)"
echo "paused write-back OK"
