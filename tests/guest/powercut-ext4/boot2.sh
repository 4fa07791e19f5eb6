. /wb/tests/lib.sh
set -e
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 $((256 * 2048))
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
mkdir -p /mnt/t
# Journal recovery at mount, then a full check must be clean.
run mount -t ext4 /dev/mapper/wb1 /mnt/t
run umount /mnt/t
run e2fsck -f -n /dev/mapper/wb1
run mount -t ext4 /dev/mapper/wb1 /mnt/t
dd if=$WB_BACKING bs=64k skip=6400 count=1 iflag=direct 2>/dev/null | tr -d '\000' > /tmp/sums
[ -s /tmp/sums ] || die "reference checksums missing"
(cd /mnt/t/safe && sha256sum -c /tmp/sums) || die "fsynced files differ after the power cut"
run umount /mnt/t
echo "ext4 power cut OK"
