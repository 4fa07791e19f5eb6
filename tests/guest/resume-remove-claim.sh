# A device with dirty data removed while resume_cache replays the log
# (after the resume took its snapshot of the devices): the resumed cache
# keeps the device's dirty data, so it must claim the device's disk, as
# it does when a device is removed from a live cache. Without the claim a
# plain table over the disk was accepted, and write-back of the cached
# (older) data overwrote what was fsynced there (found by breakF). The
# cache device is slowed with dm-delay during the resume, so the removal
# lands inside it every time.
. /wb/tests/lib.sh
set -e
SZ=$((32 * 2048))
CSZ=$((64 * 2048))
run dm_create c2 --table "0 $CSZ linear $WB_CACHE 0"
# c2_delay <ms>: every I/O of the cache device takes that long (0: plain).
c2_delay() {
    if [ "$1" = 0 ]; then
        echo "0 $CSZ linear $WB_CACHE 0" | dmsetup load c2
    else
        echo "0 $CSZ delay $WB_CACHE 0 $1" | dmsetup load c2
    fi
    run dmsetup suspend c2
    run dmsetup resume c2
}
# resume_slowly: the device (unbound) exists, resume_cache starts on the
# cache device slowed to 20 ms per I/O (the resume: about 3 s) in the
# background, writing its status to /tmp/rr; returns after 0.5 s.
resume_slowly() {
    run dmsetup remove wb126
    run mgr_msg free_cache
    run wb_create wb126 126 /dev/mapper/back126 0 $SZ
    c2_delay 20
    dmesg -c >/dev/null
    ( mgr_msg resume_cache /dev/mapper/c2; echo "rc $?" > /tmp/rr ) &
    usleep 500000
}
run dm_create back126 --table "0 $SZ linear $WB_BACKING 0"
run mgr_create
run mgr_msg format_cache_device /dev/mapper/c2
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/c2
run wb_create wb126 126 /dev/mapper/back126 2 $SZ
run wbpattern write /dev/mapper/wb126 --region 0:8M --ops 200 --sizes 4K,64K --seed 126 --fsync-every 200
dirty=$(cat $WB_SYSFS/caches/2/nr_dirty_caches)
[ "$dirty" -gt 0 ] || die "no dirty data"
resume_slowly
run dmsetup remove wb126
wait
assert_eq "$(cat /tmp/rr)" "rc 0" "resume_cache with the device removed during the replay"
dmesg | grep -q "dm_writeboost: cache 2 resumed" || die "no resume message"
c2_delay 0
assert_eq "$(cat $WB_SYSFS/caches/2/nr_dirty_caches)" "$dirty" "dirty lines kept for the removed device"
dmesg | grep -q "claimed backing device .*removed device_id 126" || die "the resumed cache did not claim the disk of removed device 126: $(dmesg | grep writeboost | tail -3)"
must_fail dmsetup create xl --table "0 $SZ linear /dev/mapper/back126 0"
# The device comes back and gets its data.
run wb_create wb126 126 /dev/mapper/back126 2 $SZ
run wbpattern check /dev/mapper/wb126 --region 0:8M --ops 200 --sizes 4K,64K --seed 126
# The device created while free_cache runs: the freeing cache is out of
# the table but still claims the disk. The refusal says so and to try
# again (it was a bare "error -16"); once the free is done, it works.
run dmsetup remove wb126
c2_delay 300
( mgr_msg free_cache; echo "rc $?" > /tmp/rf ) &
usleep 200000
must_fail dmsetup create wb126 --table "0 $SZ writeboost 126 /dev/mapper/back126 0"
wait
klog_tail 4
klog_tail 4 | grep -q "cannot open backing device '/dev/mapper/back126': busy (in use, or claimed by cache 2, which is being resumed or freed: try again when it is done)" \
    || die "no try-again message for a device created during free_cache"
assert_eq "$(cat /tmp/rf)" "rc 0" "free_cache"
c2_delay 0
run wb_create wb126 126 /dev/mapper/back126 0 $SZ
run mgr_msg resume_cache /dev/mapper/c2
run wbpattern check /dev/mapper/wb126 --region 0:8M --ops 200 --sizes 4K,64K --seed 126
# Re-created over a *different* disk during the resume: that device is not
# bound (its dirty data belongs to back126), and the cache claims back126
# (it was left open to any table).
run dm_create back126b --table "0 $SZ linear $WB_BACKING $SZ"
resume_slowly
run dmsetup remove wb126
run dm_create wb126 --table "0 $SZ writeboost 126 /dev/mapper/back126b 0"
wait
assert_eq "$(cat /tmp/rr)" "rc 0" "resume_cache with the device re-created over another disk"
c2_delay 0
dmesg | grep writeboost | tail -4
dmesg | grep -q "device_id 126 was re-created over .* so it is not bound" || die "no message for the device over another disk"
dmesg | grep -q "claimed backing device .*device_id 126" || die "the resumed cache did not claim back126 (device 126 is over another disk)"
must_fail dmsetup create xl --table "0 $SZ linear /dev/mapper/back126 0"
run dmsetup remove wb126
run wb_create wb126 126 /dev/mapper/back126 2 $SZ
run wbpattern check /dev/mapper/wb126 --region 0:8M --ops 200 --sizes 4K,64K --seed 126
# A table over the disk *during* the resume, right after the removal (the
# cache is not published yet): the disk is held for the resuming cache,
# which takes the claim over when it is published (found by breakH: the
# table was accepted, and data fsynced through it was later overwritten
# by write-back of the cached data).
resume_slowly
run dmsetup remove wb126
must_fail dmsetup create xl --table "0 $SZ linear /dev/mapper/back126 0"
wait
assert_eq "$(cat /tmp/rr)" "rc 0" "resume_cache with a table tried over the removed device's disk"
c2_delay 0
dmesg | grep writeboost | tail -4
dmesg | grep -q "device_id 126: backing device .* held while a cache is resumed" || die "the disk was not held during the resume"
dmesg | grep -q "claimed backing device .*device_id 126" || die "the resumed cache did not take the claim over"
must_fail dmsetup create xl --table "0 $SZ linear /dev/mapper/back126 0"
run wb_create wb126 126 /dev/mapper/back126 2 $SZ
run wbpattern check /dev/mapper/wb126 --region 0:8M --ops 200 --sizes 4K,64K --seed 126
run dmsetup remove wb126
run mgr_msg free_cache
# Freed, the cache claims nothing and holds nothing.
run dm_create xl --table "0 $SZ linear /dev/mapper/back126 0"
run dmsetup remove xl
run dmsetup remove writeboost-mgr
echo "resume-remove-claim OK"
