# After the cut, the documented recovery with the tools: manager, devices
# with their old ids and their cache id (not attached yet), resume the
# cache (its log is replayed and binds both devices), attach them, check
# the data, then the rest of the lifecycle: detach (write back), remove,
# free, remove the manager.
. /wb/tests/lib.sh
set -e
run dm_create back1 --table "0 409600 linear $WB_BACKING 0"
run dm_create back2 --table "0 409600 linear $WB_BACKING 409600"
run writeboost-create --mgr
run writeboost-create wa 1 /dev/mapper/back1 1
run writeboost-create wb 2 /dev/mapper/back2 1
# Resuming refuses (changing nothing) while a device owning dirty data is
# missing... (only device 1 exists for a moment)
run writeboost-remove 2
echo "+ (must fail) writeboost-resume-cache 1 $WB_CACHE"
set +e; writeboost-resume-cache 1 $WB_CACHE 2>/tmp/err; rc=$?; set -e
cat /tmp/err
assert_eq "$rc" 1 "resume with a device missing"
grep -q "kernel: dm_writeboost: " /tmp/err || die "the kernel's reason is not shown"
[ -d $WB_SYSFS/caches/1 ] && die "cache 1 resumed although device 2 is missing"
run writeboost-create wb 2 /dev/mapper/back2 1
# ... and works with both present.
run writeboost-resume-cache 1 $WB_CACHE > /tmp/out
cat /tmp/out
grep -q "bound to cache 1 by the dirty data it holds: devices 1 (wa), 2 (wb)" /tmp/out || die "resume did not report the bound devices"
assert_eq "$(cat $WB_SYSFS/devices/1/cache_id)" 1 "wa bound by its dirty data"
assert_eq "$(dmsetup table wa | awk '{print $NF}')" 0 "table of wa before attach"
writeboost-status | tee /tmp/st
grep -q "bound by its dirty data; table says 0: run writeboost-attach 1 1" /tmp/st || die "status does not explain the binding"
run writeboost-attach 1 1
run writeboost-attach 2 1
assert_eq "$(dmsetup table wa | awk '{print $NF}')" 1 "table of wa after attach"
# Every flushed write is there.
dd if=$WB_BACKING bs=1M skip=400 count=4 iflag=direct of=/tmp/a 2>/dev/null
dd if=$WB_BACKING bs=1M skip=404 count=4 iflag=direct of=/tmp/b 2>/dev/null
dd if=/dev/mapper/wa bs=4k skip=1024 count=1024 iflag=direct of=/tmp/ga 2>/dev/null
dd if=/dev/mapper/wb bs=4k skip=2048 count=1024 iflag=direct of=/tmp/gb 2>/dev/null
cmp /tmp/a /tmp/ga || die "wa lost flushed data"
cmp /tmp/b /tmp/gb || die "wb lost flushed data"
# terminate
run writeboost-detach 1
run writeboost-remove 2
dd if=/dev/mapper/back1 bs=4k skip=1024 count=1024 iflag=direct of=/tmp/ga 2>/dev/null
dd if=/dev/mapper/back2 bs=4k skip=2048 count=1024 iflag=direct of=/tmp/gb 2>/dev/null
cmp /tmp/a /tmp/ga || die "back1 wrong after the detach"
cmp /tmp/b /tmp/gb || die "back2 wrong after the remove"
run writeboost-remove 1
run writeboost-free-cache 1
run writeboost-remove --mgr
run dmsetup remove back1
run dmsetup remove back2
echo "tools power cut OK"
