# Random and sequential writes of mixed sizes (512 B .. 1 MiB) and
# alignments, verified by fio with O_DIRECT reads while the data is in the
# RAM buffers, on the cache device, partly migrated and fully migrated.
. /wb/tests/lib.sh
set -e
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((64 * 2048))

fio_write() {
    # fio_write <name> <rw> <bsrange> <offset> <size> [extra]
    run fio --name=$1 --filename=/dev/mapper/wb1 --direct=1 --ioengine=libaio --iodepth=8 \
        --rw=$2 --bsrange=$3 --offset=$4 --size=$5 --verify=crc32c --verify_fatal=1 \
        --do_verify=0 --randseed=$6 --output=/tmp/$1.w >/dev/null
}
fio_verify() {
    run fio --name=$1 --filename=/dev/mapper/wb1 --direct=1 --ioengine=libaio --iodepth=8 \
        --rw=$2 --bsrange=$3 --offset=$4 --size=$5 --verify=crc32c --verify_fatal=1 \
        --verify_only --randseed=$6 --output=/tmp/$1.v
}
# Two regions, written with different patterns of sizes.
fio_write r1 randwrite 512-64k 0 16M 11
fio_write r2 write 4k-1M 16M 16M 22
# Still mostly in RAM and on the cache device.
fio_verify r1 randwrite 512-64k 0 16M 11
fio_verify r2 write 4k-1M 16M 16M 22
# Overwrite part of r1 unaligned (512 B writes in a 2 MiB window).
fio_write r3 randwrite 512-2k 1M 2M 33
fio_verify r3 randwrite 512-2k 1M 2M 33
# Partly migrated: migrate a little, then verify again.
run mgr_msg allow_migrate 1
sleep 3
run mgr_msg allow_migrate 0
fio_verify r2 write 4k-1M 16M 16M 22
fio_verify r3 randwrite 512-2k 1M 2M 33
# Fully migrated, then read with the cache still attached and from the
# backing device alone.
run mgr_msg allow_migrate 1
run mgr_msg flush_current_buffer
wait_clean 1
fio_verify r2 write 4k-1M 16M 16M 22
fio_verify r3 randwrite 512-2k 1M 2M 33
stats=$(dmsetup status writeboost-mgr); echo "$stats"
# The counters moved: some write hits on the RAM buffer and some read hits.
echo "mixed io OK"
