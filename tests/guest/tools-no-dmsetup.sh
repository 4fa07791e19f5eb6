# The admin tools need no dmsetup: they speak the DM ioctls, make and
# remove the /dev/mapper nodes themselves where no udev runs (the guest),
# and show the kernel's reason for a refusal. dmsetup is taken out of the
# guest for the test; its checks use sysfs and /dev only.
. /wb/tests/lib.sh
set -e

# The tools' PATH (see tools_wrapper in scripts/guest.py) has no dmsetup.
writeboost-daemon run --tick-ms 500 >/tmp/daemon.out 2>&1 &
dpid=$!
sleep 1
tpath=$(tr '\0' '\n' < /proc/$dpid/environ | sed -n 's/^PATH=//p')
kill $dpid
wait $dpid || true
echo "the tools' PATH: $tpath"
[ -n "$tpath" ] || die "no PATH in the environment of a tool"
for d in $(echo "$tpath" | tr ':' ' '); do
    [ -e "$d/dmsetup" ] && die "dmsetup is on the tools' PATH ($d)"
done
[ -e /run/udev/control ] && die "udev runs in the guest: this test is about its absence"

# A device holding the disk a cache is to be formatted on, made while
# dmsetup is still there, with a mounted file system. Then dmsetup goes.
run dm_create holder --table "0 16384 linear $WB_BACKING 200000"
run mkfs.ext4 -q /dev/mapper/holder
mkdir -p /mnt/holder
run mount /dev/mapper/holder /mnt/holder
dm=$(command -v dmsetup)
back() { if [ -e /tmp/dmsetup.away ]; then mv /tmp/dmsetup.away "$dm"; fi; }
trap 'back; umount /mnt/holder 2>/dev/null || true' EXIT
trap 'back; umount /mnt/holder 2>/dev/null; exit 143' INT TERM
run mv "$dm" /tmp/dmsetup.away
hash -r 2>/dev/null || true
which dmsetup >/dev/null && die "dmsetup still found"

# devno_of NAME: major:minor of dm device NAME, from sysfs.
devno_of() {
    for _b in /sys/block/dm-*; do
        [ "$(cat $_b/dm/name)" = "$1" ] && { cat $_b/dev; return 0; }
    done
    return 1
}
# node_of PATH: major:minor of a block node.
node_of() {
    _h=$(stat -L -c '%t:%T' "$1")
    printf '%d:%d' 0x${_h%:*} 0x${_h#*:}
}

# A control node that is not device-mapper's (a file where it goes): made
# again, as dmsetup does, instead of an ioctl failing with ENOTTY.
ctl=$(stat -c '%t:%T' /dev/mapper/control)
run rm /dev/mapper/control
echo x > /dev/mapper/control
run writeboost-create --mgr
[ -c /dev/mapper/control ] && [ "$(stat -c '%t:%T' /dev/mapper/control)" = "$ctl" ] || die "/dev/mapper/control not made again"
assert_eq "$(node_of /dev/mapper/writeboost-mgr)" "$(devno_of writeboost-mgr)" "node of the manager"
# A refusal only the kernel makes (the disk is held): its line is shown.
echo "+ (must fail, exit 1) writeboost-format-cache --force $WB_BACKING"
set +e
writeboost-format-cache --force $WB_BACKING >/tmp/out 2>/tmp/err
rc=$?
set -e
cat /tmp/out /tmp/err
assert_eq "$rc" 1 "exit status of a format refused by the kernel"
grep -q "device-mapper message to writeboost-mgr failed: .*(as \`dmsetup message writeboost-mgr 0 format_cache_device" /tmp/err \
    || die "the failed operation is not named"
grep -q "kernel: dm_writeboost: writeboost-mgr: format_cache_device" /tmp/err || die "the kernel's reason is not shown"
# A table the kernel refuses (its backing device is mounted): the target's
# reason (ti->error) is shown and the half-made device is removed again.
echo "+ (must fail, exit 1) writeboost-create wbm 3 /dev/mapper/holder"
set +e
writeboost-create wbm 3 /dev/mapper/holder >/tmp/out 2>/tmp/err
rc=$?
set -e
cat /tmp/out /tmp/err
assert_eq "$rc" 1 "exit status of a create refused by the kernel"
grep -q "device-mapper create of wbm failed: Device or resource busy (EBUSY)" /tmp/err || die "the failed create is not named"
grep -q "kernel: device-mapper: table: .*writeboost: cannot open backing device '/dev/mapper/holder'" /tmp/err \
    || die "the target's reason is not shown"
[ -e /dev/mapper/wbm ] && die "a node of the refused wbm was made"
# Something that is not a node where the node goes (a directory): refused
# before the device is made, so no device without its node stays behind.
mkdir /dev/mapper/wbd
echo "+ (must fail, exit 1) writeboost-create wbd 3 $WB_BACKING --sectors 8"
set +e
writeboost-create wbd 3 $WB_BACKING --sectors 8 >/tmp/out 2>/tmp/err
rc=$?
set -e
cat /tmp/out /tmp/err
assert_eq "$rc" 1 "exit status of a create over a directory at the node"
grep -q "/dev/mapper/wbd exists and is not a device node" /tmp/err || die "the directory in the way is not named"
devno_of wbd && die "wbd was created and left behind without its node"
rmdir /dev/mapper/wbd

run writeboost-format-cache --force $WB_CACHE
run writeboost-resume-cache 1 $WB_CACHE
# Without udev a node of a removed device stays behind, maybe with the
# number of another one: the tools replace it.
mknod /dev/mapper/wb1 b 7 99
run writeboost-create wb1 1 $WB_BACKING 1 --sectors 16384
[ -b /dev/mapper/wb1 ] || die "no block node /dev/mapper/wb1"
assert_eq "$(node_of /dev/mapper/wb1)" "$(devno_of wb1)" "node of wb1"
assert_eq "$(cat $WB_SYSFS/devices/1/cache_id)" 1 "wb1 attached by create"
dd if=/dev/urandom of=/tmp/data bs=64k count=16 2>/dev/null
run dd if=/tmp/data of=/dev/mapper/wb1 bs=64k oflag=direct 2>/dev/null
[ "$(cat $WB_SYSFS/devices/1/nr_dirty_caches)" -gt 0 ] || die "no dirty lines"
run writeboost-status
run writeboost-detach 1
assert_eq "$(cat $WB_SYSFS/devices/1/cache_id)" 0 "wb1 detached"
dd if=$WB_BACKING bs=64k count=16 iflag=direct 2>/dev/null | cmp - /tmp/data || die "backing disk differs after detach"
run writeboost-attach 1 1
run writeboost-remove 1
[ -e /dev/mapper/wb1 ] && die "node of the removed wb1 left behind"
[ -d $WB_SYSFS/devices/1 ] && die "device 1 still there"
run writeboost-free-cache 1
run writeboost-remove --mgr
[ -e /dev/mapper/writeboost-mgr ] && die "node of the removed manager left behind"
for b in /sys/block/dm-*; do
    [ "$(cat $b/dm/name)" = holder ] || die "device $(cat $b/dm/name) left behind"
done

back
# (A device without a table has no /sys/block entry: dmsetup tells.)
dmsetup info wbm >/dev/null 2>&1 && die "the refused wbm was left behind"
run umount /mnt/holder
run dmsetup remove holder
echo "tools without dmsetup OK"
