# ext4 on a writeboost device: a file workload, unmount, fsck, remount and
# verify, with migration running part of the time.
. /wb/tests/lib.sh
set -e
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((128 * 2048))
run mkfs.ext4 -q -F /dev/mapper/wb1
mkdir -p /mnt/t
run mount -t ext4 /dev/mapper/wb1 /mnt/t
run fio --name=fs --directory=/mnt/t --nrfiles=16 --size=24M --rw=randrw --bsrange=1k-64k \
    --ioengine=psync --fsync=32 --verify=crc32c --verify_fatal=1 --output=/tmp/fs.out
run mgr_msg allow_migrate 1
for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=/mnt/t/f$i bs=64k count=16 2>/dev/null; done
sha256sum /mnt/t/f* > /tmp/sums
run umount /mnt/t
run e2fsck -f -n /dev/mapper/wb1
run mount -t ext4 /dev/mapper/wb1 /mnt/t
echo 3 > /proc/sys/vm/drop_caches
(cd / && sha256sum -c /tmp/sums) || die "files differ after remount"
run umount /mnt/t
echo "ext4 OK"
