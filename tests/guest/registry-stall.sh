# A cache device that stalls while resume_cache reads it (a suspended
# dm-linear under it) stalls nothing else: the manager's status, messages,
# sysfs reads, and the constructor, resume and messages of another device
# on another cache all finish at once; a second resume_cache of the same id
# and a format of the same device are refused at once (busy). Once the
# device comes back, the resume completes.
. /wb/tests/lib.sh
set -e
csz=$((16 * 2048))
run dm_create cslow --table "0 $csz linear $WB_CACHE 0"
run dm_create cfast --table "0 $csz linear $WB_CACHE $csz"
run mgr_create
run mgr_msg format_cache_device /dev/mapper/cslow
run mgr_msg format_cache_device /dev/mapper/cfast
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/cfast

# within <seconds> <command...>: the command must finish in time. If it
# does not, the stalled device is resumed (so that everything can finish
# and be torn down) and the test fails.
within() {
    _t=$1
    shift
    rm -f /tmp/within.rc
    ( set +e; "$@" > /tmp/within.out 2>&1; echo $? > /tmp/within.rc ) &
    _i=0
    while [ ! -f /tmp/within.rc ]; do
        _i=$((_i + 1))
        if [ $_i -gt $((_t * 10)) ]; then
            dmsetup resume cslow
            wait
            die "blocked for more than ${_t} s while a resume_cache waits for its device: $*"
        fi
        sleep 0.1
    done
    cat /tmp/within.out
    return "$(cat /tmp/within.rc)"
}

run dmsetup suspend cslow
# Whatever happens, the stuck resume_cache gets its device back (or the
# teardown would wait for it for ever).
trap 'dmsetup resume cslow 2>/dev/null' EXIT
run mgr_msg switch_to 1
( mgr_msg resume_cache /dev/mapper/cslow; echo $? > /tmp/resume.rc ) &
sleep 1
[ -f /tmp/resume.rc ] && die "resume_cache finished although its device is suspended"

echo "+ (within 5 s) the rest of the module keeps working"
within 5 dmsetup status writeboost-mgr | grep -q "current cache_id_ptr: 1" || die "manager status"
within 5 cat $WB_SYSFS/caches/2/nr_dirty_caches
within 5 dmsetup create wb2 --table "0 2048 writeboost 2 $WB_BACKING 2" || die "create a device on cache 2"
dmsetup mknodes wb2
within 5 dmsetup message wb2 0 add_sysfs || die "add_sysfs"
within 5 cat $WB_SYSFS/devices/2/cache_id | grep -qx 2 || die "devices/2/cache_id"
within 5 dd if=/dev/urandom of=/dev/mapper/wb2 bs=4k count=4 oflag=direct conv=fsync || die "write to wb2"
within 5 dmsetup status wb2 || die "status of wb2"
within 5 mgr_msg migrate_threshold 2 50 || die "migrate_threshold"

echo "+ (within 5 s, must fail) the same id and the same device are busy"
within 5 mgr_msg resume_cache /dev/mapper/cfast && die "a second resume_cache of cache 1 was accepted"
klog_tail 3 | grep -q "resume_cache: cache 1 is busy" || die "no clear busy message for the second resume_cache"
within 5 mgr_msg free_cache && die "free_cache of a cache being resumed was accepted"
klog_tail 3 | grep -q "cache 1 is busy" || die "no clear busy message for free_cache"
within 5 mgr_msg format_cache_device /dev/mapper/cslow && die "format of a device being resumed was accepted"
klog_tail 3 | grep -q "device is busy" || die "no clear busy message for the format"
# (Over a disk of its own: one device id per disk.)
run dm_create b3 --table "0 2048 linear $WB_BACKING 4096"
within 5 dmsetup create wb3 --table "0 2048 writeboost 3 /dev/mapper/b3 1" && die "a device named a cache being resumed"
klog_tail 3 | grep -q "cache 1 is being resumed or freed" || die "no clear message for the device"

run dmsetup resume cslow
i=0
while [ ! -f /tmp/resume.rc ]; do
    i=$((i + 1)); [ $i -lt 100 ] || die "resume_cache did not finish after its device came back"
    sleep 0.1
done
assert_eq "$(cat /tmp/resume.rc)" 0 "resume_cache exit status"
[ -d $WB_SYSFS/caches/1 ] || die "cache 1 missing after its resume"
run dmsetup remove wb2
echo "registry stall OK"
