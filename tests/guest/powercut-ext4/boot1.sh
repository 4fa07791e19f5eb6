# ext4 on writeboost: fsynced files, then a power cut in the middle of a
# workload (with migration running).
. /wb/tests/lib.sh
set -e
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((256 * 2048))
run mkfs.ext4 -q -F /dev/mapper/wb1
mkdir -p /mnt/t
run mount -t ext4 /dev/mapper/wb1 /mnt/t
mkdir -p /mnt/t/safe
i=0
while [ $i -lt 20 ]; do
    dd if=/dev/urandom of=/mnt/t/safe/f$i bs=16k count=$((i + 1)) conv=fsync 2>/dev/null
    i=$((i + 1))
done
sync
(cd /mnt/t/safe && sha256sum f*) > /tmp/sums
# Keep the checksums where they survive: a small file on the raw slow disk
# beyond the device (sector 400 MiB).
dd if=/tmp/sums of=$WB_BACKING bs=64k seek=6400 conv=sync,fsync oflag=direct 2>/dev/null
run mgr_msg allow_migrate 1
# An unsynced workload in the background, then the cut.
fio --name=w --directory=/mnt/t --nrfiles=8 --size=32M --rw=randwrite --bsrange=4k-64k \
    --ioengine=psync --time_based --runtime=30 --output=/tmp/w.out >/dev/null 2>&1 &
sleep 6
wb_powercut
