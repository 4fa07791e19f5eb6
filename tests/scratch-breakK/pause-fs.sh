# breakK: ext4 made and mounted on the other table (o7, whole disk) while
# id 7's write-back is paused; force_migrate while mounted; fsck; then
# umount + remove o7: id 7's data must be written back.
. /wb/tests/lib.sh
set -e
trap "set +e; dmsetup remove o7 2>/dev/null; true" EXIT
since() { dmesg | tail -n +$((mark + 1)); }
ndirty() { mgr_msg switch_to 1; mgr_status_value nr_dirty_caches; }
run cache_setup
sz=$((64 * 2048))
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run wb_create wb7 7 /dev/mapper/b7 1
run wbpattern fill /dev/mapper/wb7 --region 0:16M --gen 1000 --seed 7
run dm_create o7 --table "0 $sz linear /dev/mapper/b7 0"
mark=$(dmesg | wc -l)
run dmsetup remove wb7
since | grep -q "cannot claim" || die "not paused"
run mkfs.ext4 -q -F /dev/mapper/o7
mkdir -p /mnt/t
run mount -t ext4 /dev/mapper/o7 /mnt/t
i=0; while [ $i -lt 20 ]; do dd if=/dev/urandom of=/mnt/t/f$i bs=256k count=4 2>/dev/null; i=$((i + 1)); done
(cd /mnt/t && sha256sum f* > /tmp/sums)
sync
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
sleep 6
echo 3 > /proc/sys/vm/drop_caches
(cd /mnt/t && sha256sum -c /tmp/sums >/dev/null) || die "files changed under the mounted fs while paused"
i=0; while [ $i -lt 10 ]; do dd if=/dev/urandom of=/mnt/t/g$i bs=256k count=4 conv=fsync 2>/dev/null; i=$((i + 1)); done
run umount /mnt/t
run e2fsck -f -n /dev/mapper/o7
echo "dirty while fs was used: $(ndirty)"
[ "$(ndirty)" = 4096 ] || die "id 7's dirty count changed while paused: $(ndirty)"
run dmsetup remove o7
i=0; until [ "$(ndirty)" = 0 ]; do i=$((i + 1)); [ $i -lt 90 ] || die "id 7 not written back"; sleep 1; done
run wbpattern check /dev/mapper/b7 --region 0:16M --ops 0 --initial gen:1000 --seed 7
run mgr_msg force_migrate 0
echo "pause-fs done"
