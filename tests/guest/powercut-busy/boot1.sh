# Power cut while segments are being written: a background writer keeps the
# flusher busy (segments in flight, some torn by the cut) while a foreground
# write is fsynced; the cut follows the fsync at once.
. /wb/tests/lib.sh
set -e
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((256 * 2048))
dd if=/dev/urandom of=/tmp/d bs=1M count=4 2>/dev/null
run dd if=/tmp/d of=$WB_BACKING bs=1M seek=400 oflag=direct conv=fsync 2>/dev/null
fio --name=bg --filename=/dev/mapper/wb1 --offset=64M --size=8M --rw=randwrite --bs=4k \
    --direct=1 --ioengine=libaio --iodepth=32 --time_based --runtime=60 --output=/tmp/bg >/dev/null 2>&1 &
sleep 3
# 4 MiB at 8 MiB in 16 KiB writes, then fsync, then the cut.
dd if=/tmp/d of=/dev/mapper/wb1 bs=16k seek=512 oflag=direct conv=fsync 2>/dev/null
echo "@@WB CRASH"
echo b > /proc/sysrq-trigger
