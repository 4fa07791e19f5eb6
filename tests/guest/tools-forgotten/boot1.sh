# The forgotten cache, boot 1: a device attached to cache 1 gets flushed
# data (A), then the power goes. The tools' state file lives on a small
# ext4 file system on the slow disk (the guest's root is a RAM disk), as
# /var/lib would on a real machine.
. /wb/tests/lib.sh
set -e
run dm_create back1 --table "0 131072 linear $WB_BACKING 0"
run dm_create wbstate --table "0 32768 linear $WB_BACKING 524288"
run mkfs.ext4 -q -F /dev/mapper/wbstate
mkdir -p /var/lib/writeboost
run mount -t ext4 /dev/mapper/wbstate /var/lib/writeboost
run writeboost-create --mgr
run writeboost-format-cache --force $WB_CACHE
run writeboost-create wa 1 /dev/mapper/back1
run writeboost-resume-cache 1 $WB_CACHE
run writeboost-attach 1 1
dd if=/dev/urandom of=/tmp/a bs=1M count=2 2>/dev/null
# The reference copy, beyond back1, for the next boot.
run dd if=/tmp/a of=$WB_BACKING bs=1M seek=200 oflag=direct conv=fsync 2>/dev/null
run dd if=/tmp/a of=/dev/mapper/wa bs=4k seek=256 oflag=direct conv=fsync 2>/dev/null
[ "$(cat $WB_SYSFS/devices/1/nr_dirty_caches)" -ge 512 ] || die "wa should be dirty"
cat /var/lib/writeboost/state.json
grep -q '"dirty": true' /var/lib/writeboost/state.json || die "the state does not record the attachment"
wb_powercut
