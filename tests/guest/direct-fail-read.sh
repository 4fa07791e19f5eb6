# A direct write that fails (the cache device returns EIO, then comes
# back): reads of the block must give its old data, the new data or EIO,
# never the stale bytes its cache slot held from an earlier segment (here
# another device's data). A flushed 4 KiB write of device 1 stays readable.
. /wb/tests/lib.sh
set -e
csize=$((24 * 2048))
run mgr_create
run dm_create fcache --table "0 $csize linear $WB_CACHE 0"
run mgr_msg format_cache_device /dev/mapper/fcache
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run dm_create b1 --table "0 $((64 * 2048)) linear $WB_BACKING 0"
run dm_create b2 --table "0 $((128 * 2048)) linear $WB_BACKING $((64 * 2048))"
mkfill A 1048576 /tmp/A
mkfill B 1048576 /tmp/B
mkfill S 1048576 /tmp/S
mkfill C 4096 /tmp/C
run dd if=/tmp/A of=/dev/mapper/b1 bs=1M count=1 oflag=direct 2>/dev/null
run wb_create wb1 1 /dev/mapper/b1 1
run wb_create wb2 2 /dev/mapper/b2 1
# Device 2 writes 'S' through every slot (40 MiB through a 24 MiB cache),
# then everything is written back: the slots keep the 'S' bytes.
run mgr_msg allow_migrate 1
i=0
while [ $i -lt 40 ]; do
    dd if=/tmp/S of=/dev/mapper/wb2 bs=1M seek=$i oflag=direct 2>/dev/null
    i=$((i + 1))
done
run mgr_msg flush_current_buffer
wait_clean 2 200
run mgr_msg allow_migrate 0
run dd if=/tmp/C of=/dev/mapper/wb1 bs=4k seek=2048 oflag=direct conv=fsync 2>/dev/null
# The cache device fails for one 1 MiB direct write of 'B' over the 'A'.
echo "0 $csize error" | dmsetup load fcache
run dmsetup suspend --noflush fcache
run dmsetup resume fcache
if dd if=/tmp/B of=/dev/mapper/wb1 bs=1M count=1 oflag=direct 2>/dev/null; then
    die "a direct write to a failed cache device succeeded"
fi
i=0
until dmesg | grep -q "direct write to the cache device failed"; do
    i=$((i + 1)); [ $i -le 50 ] || die "no log line for the failed direct write"; sleep 0.2
done
echo "0 $csize linear $WB_CACHE 0" | dmsetup load fcache
run dmsetup suspend --noflush fcache
run dmsetup resume fcache
# Block by block: 'A', 'B' or EIO.
eio=0
i=0
while [ $i -lt 256 ]; do
    if read_blocks /dev/mapper/wb1 $i 1 /tmp/r; then
        [ "$(tr -d 'AB' < /tmp/r | wc -c)" = 0 ] || die "block $i of device 1 reads bytes never written to it after a failed direct write: $(sector_summary /tmp/r)"
    else
        eio=$((eio + 1))
    fi
    i=$((i + 1))
done
echo "blocks read with EIO: $eio of 256"
read_blocks /dev/mapper/wb1 2048 1 /tmp/r || die "the flushed 4 KiB write cannot be read"
cmp -s /tmp/r /tmp/C || die "the flushed 4 KiB write of device 1 is lost: $(sector_summary /tmp/r)"
run dmsetup remove wb1
run dmsetup remove wb2
mgr_msg free_cache || true
# Resumed again, the failed segment is not replayed: the old data is back.
run wb_create wb1 1 /dev/mapper/b1 0
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run wb_set_cache wb1 1
read_blocks /dev/mapper/wb1 0 256 /tmp/r
[ "$(tr -d 'A' < /tmp/r | wc -c)" = 0 ] || [ "$(tr -d 'AB' < /tmp/r | wc -c)" = 0 ] || die "after a re-resume device 1 reads foreign bytes: $(sector_summary /tmp/r)"
read_blocks /dev/mapper/wb1 2048 1 /tmp/r
cmp -s /tmp/r /tmp/C || die "the flushed 4 KiB write is lost after a re-resume"
run dmsetup remove wb1
run mgr_msg free_cache
echo "direct write failure: reads OK"
