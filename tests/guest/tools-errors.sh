# Every bad invocation of the admin tools prints a clear message, exits
# non-zero and changes nothing: unknown ids, an already attached device, a
# cache that is not resumed, wrong paths, a missing manager or module, and
# refusals by the kernel (whose log line the tool shows).
. /wb/tests/lib.sh
set -e

# Everything observable: tables, statuses, sysfs values, kernel log size.
snapshot() {
    dmsetup table 2>&1
    dmsetup status 2>&1
    # One process for every sysfs value (a fork per file made this test slow).
    grep -rs . $WB_SYSFS/caches $WB_SYSFS/devices
    ls /run/writeboost 2>/dev/null | grep -v lock
    return 0
}

# bad <exit status> <message part> <command...>
bad() {
    _want=$1; _msg=$2; shift 2
    _before=$(snapshot)
    _klog=$(dmesg | grep -c -e dm_writeboost -e device-mapper)
    echo "+ (must fail, exit $_want) $*"
    set +e
    "$@" >/tmp/out 2>/tmp/err
    _rc=$?
    set -e
    cat /tmp/out /tmp/err
    [ "$_rc" = "$_want" ] || die "exit status $_rc, expected $_want: $*"
    grep -q -- "$_msg" /tmp/err || die "no message '$_msg' from: $*"
    [ "$(snapshot)" = "$_before" ] || die "state changed by: $*"
    # Exit status 2: refused before writeboost or device-mapper logged anything.
    if [ "$_want" = 2 ]; then
        [ "$(dmesg | grep -c -e dm_writeboost -e device-mapper)" = "$_klog" ] || { dmesg | tail -3; die "the kernel logged something for: $*"; }
    fi
}

# No manager yet.
bad 2 "the writeboost manager does not exist" writeboost-format-cache $WB_CACHE
bad 2 "the writeboost manager does not exist" writeboost-resume-cache 1 $WB_CACHE
bad 2 "the writeboost manager does not exist" writeboost-free-cache 1
bad 2 "the writeboost manager does not exist" writeboost-remove --mgr

run writeboost-create --mgr
bad 2 "the writeboost manager already exists" writeboost-create --mgr
# Wrong paths and values.
bad 2 "cache device /dev/nope does not exist" writeboost-format-cache /dev/nope
bad 2 "cache device /tmp is not a block device" writeboost-format-cache /tmp
bad 2 "is not a writeboost cache device" writeboost-resume-cache 1 $WB_BACKING
bad 2 "backing device /dev/nope does not exist" writeboost-create wb1 1 /dev/nope
bad 2 "invalid device name" writeboost-create "a/b" 1 $WB_BACKING
bad 2 "not a valid device id" writeboost-create wb1 0 $WB_BACKING
bad 2 "not a valid device id" writeboost-create wb1 128 $WB_BACKING
bad 2 "not a valid cache id" writeboost-resume-cache 200 $WB_CACHE
bad 2 "is not within the backing device" writeboost-create wb1 1 $WB_BACKING --sectors 99999999
bad 2 "between\|within\|invalid value" writeboost-resume-cache 1 $WB_CACHE --barrier-deadline-ms 0

run writeboost-format-cache --force $WB_CACHE
bad 2 "already holds a writeboost cache" writeboost-format-cache $WB_CACHE
run writeboost-create wb1 1 $WB_BACKING --sectors 262144
# Unknown ids.
bad 2 "no writeboost device with device id 9" writeboost-attach 9 1
bad 2 "no writeboost device with device id 9" writeboost-detach 9
bad 2 "no writeboost device with device id 9" writeboost-remove 9
bad 2 "no writeboost device with device id 9" writeboost-status --device 9
# Cache not resumed.
bad 2 "cache 1 is not resumed" writeboost-attach 1 1
bad 2 "cache 1 is not resumed" writeboost-free-cache 1
bad 2 "cache 1 is not resumed" writeboost-status --cache 1
# Ids, names and backing devices already in use.
bad 2 "device id 1 is already used by wb1" writeboost-create wb2 1 $WB_CACHE
bad 2 "named wb1 already exists" writeboost-create wb1 2 $WB_CACHE
bad 2 "already the backing device of device 1 (wb1)" writeboost-create wb2 2 $WB_BACKING
bad 2 "is the backing device of device 1 (wb1)" writeboost-format-cache --force $WB_BACKING
bad 2 "is not attached to a cache" writeboost-detach 1

run writeboost-resume-cache 1 $WB_CACHE
bad 2 "cache 1 is already resumed" writeboost-resume-cache 1 $WB_CACHE
bad 2 "is already resumed as cache 1" writeboost-resume-cache 2 $WB_CACHE
bad 2 "is cache 1, which is resumed" writeboost-format-cache --force $WB_CACHE
bad 2 "is the cache device of cache 1" writeboost-create wb2 2 $WB_CACHE
bad 2 "cache 2 is not resumed" writeboost-attach 1 2
run writeboost-attach 1 1
bad 2 "already attached to cache 1" writeboost-attach 1 1
bad 2 "cache 1 still serves device 1 (wb1)" writeboost-free-cache 1
bad 2 "cache 1 still resumed" writeboost-remove --mgr

# Refusals only the kernel can make: its log line is shown, exit 1.
run writeboost-detach 1
run writeboost-free-cache 1
run dm_create holder --table "0 2048 linear $WB_CACHE 0"
bad 1 "kernel: dm_writeboost: writeboost-mgr: format_cache_device" writeboost-format-cache --force $WB_CACHE
run dmsetup remove holder
# A cache holding dirty data of a device removed behind the tools' back is
# not freed unless asked to write it back (or keep it).
run writeboost-format-cache --force $WB_CACHE
run writeboost-resume-cache 1 $WB_CACHE
run dm_create part --table "0 4096 linear $WB_BACKING 600000"
run writeboost-create wbx 7 /dev/mapper/part
run writeboost-attach 7 1
run dd if=/dev/urandom of=/dev/mapper/wbx bs=4k count=64 oflag=direct
assert_eq "$(cat $WB_SYSFS/devices/7/nr_dirty_caches)" 64 "dirty lines of wbx"
run dmsetup remove wbx
assert_eq "$(cat $WB_SYSFS/caches/1/nr_dirty_caches)" 64 "dirty lines left in cache 1 by the removed wbx"
bad 2 "cache 1 holds 64 dirty lines of removed devices" writeboost-free-cache 1
run writeboost-free-cache 1 --drain
[ -d $WB_SYSFS/caches/1 ] && die "cache 1 not freed after --drain"
run dmsetup remove part
# An open device is not removed.
exec 3</dev/mapper/wb1
bad 2 "is open" writeboost-remove 1
exec 3<&-
# The module is not loaded.
run writeboost-remove 1
run writeboost-remove --mgr
run rmmod dm_writeboost
bad 2 "module is not loaded" writeboost-create --mgr
bad 2 "module is not loaded" writeboost-attach 1 1
writeboost-status | grep -q "not loaded" || die "status without the module"
run insmod /wb/dm-writeboost.ko
echo "tools errors OK"
