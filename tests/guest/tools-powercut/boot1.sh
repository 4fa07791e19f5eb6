# The lifecycle with the admin tools, cut in the middle: two devices on a
# shared cache with flushed, not yet written back data when the power goes.
. /wb/tests/lib.sh
set -e
# Two 200 MiB backing devices; reference copies of the data go straight to
# the disk beyond them (at 400 MiB).
run dm_create back1 --table "0 409600 linear $WB_BACKING 0"
run dm_create back2 --table "0 409600 linear $WB_BACKING 409600"
run writeboost-create --mgr
run writeboost-format-cache --force $WB_CACHE
run writeboost-create wa 1 /dev/mapper/back1
run writeboost-create wb 2 /dev/mapper/back2
run writeboost-resume-cache 1 $WB_CACHE
run writeboost-attach 1 1
run writeboost-attach 2 1
dd if=/dev/urandom of=/tmp/a bs=1M count=4 2>/dev/null
dd if=/dev/urandom of=/tmp/b bs=1M count=4 2>/dev/null
run dd if=/tmp/a of=$WB_BACKING bs=1M seek=400 oflag=direct conv=fsync 2>/dev/null
run dd if=/tmp/b of=$WB_BACKING bs=1M seek=404 oflag=direct conv=fsync 2>/dev/null
run dd if=/tmp/a of=/dev/mapper/wa bs=4k seek=1024 oflag=direct conv=fsync 2>/dev/null
run dd if=/tmp/b of=/dev/mapper/wb bs=4k seek=2048 oflag=direct conv=fsync 2>/dev/null
run writeboost-status
[ "$(cat $WB_SYSFS/devices/1/nr_dirty_caches)" -ge 1024 ] || die "wa should be dirty"
[ "$(cat $WB_SYSFS/devices/2/nr_dirty_caches)" -ge 1024 ] || die "wb should be dirty"
wb_powercut
