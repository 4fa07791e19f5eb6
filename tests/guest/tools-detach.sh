# writeboost-detach never detaches with dirty data left: --timeout and
# Ctrl-C (SIGINT) abort cleanly and leave the device attached with its data
# intact and force_migrate restored; with migration off it still finishes
# (it forces migration for the time of the drain); with a writer running it
# finishes by draining the rest suspended, and the backing disk alone then
# holds every write.
. /wb/tests/lib.sh
set -e
run writeboost-create --mgr
run writeboost-format-cache --force $WB_CACHE
run writeboost-create wb1 1 $WB_BACKING --sectors $((256 * 2048))
run writeboost-resume-cache 1 $WB_CACHE --nr-max-batched-migration 1
run writeboost-attach 1 1
fio_args="--name=d --direct=1 --ioengine=libaio --iodepth=16
    --rw=randwrite --bs=4k --size=8M --verify=crc32c --verify_fatal=1 --randseed=5"
run fio $fio_args --filename=/dev/mapper/wb1 --do_verify=0 --output=/tmp/w
dirty=$(cat $WB_SYSFS/devices/1/nr_dirty_caches)
echo "dirty lines: $dirty"
[ "$dirty" -ge 2000 ] || die "expected >= 2000 dirty lines, got $dirty"
assert_eq "$(cat $WB_SYSFS/caches/1/allow_migrate)" 0 "migration is off"

attached() {
    assert_eq "$(cat $WB_SYSFS/devices/1/cache_id)" 1 "cache_id ($1)"
    assert_eq "$(dmsetup table wb1 | awk '{print $NF}')" 1 "table ($1)"
    assert_eq "$(cat $WB_SYSFS/caches/1/force_migrate)" 0 "force_migrate restored ($1)"
    assert_eq "$(cat $WB_SYSFS/caches/1/allow_migrate)" 0 "allow_migrate untouched ($1)"
    dmsetup info wb1 | grep -q ACTIVE || die "wb1 not active ($1)"
    dmsetup info wb1 | grep -q SUSPENDED && die "wb1 left suspended ($1)"
    return 0
}

# A timeout: the device stays attached, nothing is lost.
echo "+ (must fail) writeboost-detach 1 --timeout 2"
set +e; writeboost-detach 1 --timeout 2 2>/tmp/err; rc=$?; set -e
cat /tmp/err
assert_eq "$rc" 1 "exit status after the timeout"
grep -q "gave up after 2 s: [0-9]* dirty lines are left; device 1 (wb1) stays attached to cache 1" /tmp/err || die "no clear timeout message"
attached timeout
left1=$(cat $WB_SYSFS/devices/1/nr_dirty_caches)
[ "$left1" -gt 0 ] && [ "$left1" -le "$dirty" ] || die "expected dirty lines left: $left1 of $dirty"
run fio $fio_args --filename=/dev/mapper/wb1 --verify_only --output=/tmp/v1

# Ctrl-C (SIGINT) in the middle of the drain.
writeboost-detach 1 2>/tmp/err &
pid=$!
sleep 2
kill -INT $pid
set +e; wait $pid; rc=$?; set -e
cat /tmp/err
assert_eq "$rc" 130 "exit status after SIGINT"
grep -q "interrupted: [0-9]* dirty lines are left; device 1 (wb1) stays attached to cache 1" /tmp/err || die "no clear message after SIGINT"
attached SIGINT
left2=$(cat $WB_SYSFS/devices/1/nr_dirty_caches)
[ "$left2" -gt 0 ] && [ "$left2" -le "$left1" ] || die "expected dirty lines left: $left2 of $left1"
run fio $fio_args --filename=/dev/mapper/wb1 --verify_only --output=/tmp/v2

# SIGTERM too (a shutdown script killed). The same writes again first, so
# that the drain outlasts the second before the signal (the tools start
# fast now that they speak the DM ioctls: the few lines left above could
# drain before it).
run fio $fio_args --filename=/dev/mapper/wb1 --do_verify=0 --output=/tmp/w3
writeboost-detach 1 2>/tmp/err &
pid=$!
sleep 1
kill -TERM $pid
set +e; wait $pid; rc=$?; set -e
assert_eq "$rc" 130 "exit status after SIGTERM"
attached SIGTERM

# A writer keeps writing during the detach (faster than the backing disk
# takes it back): the detach still finishes, and afterwards the backing disk
# alone holds every write, the writer's as well.
w2="--name=w2 --direct=1 --ioengine=libaio --iodepth=4 --rw=randwrite
    --bs=4k --offset=64M --size=4M --rate_iops=300 --verify=crc32c --verify_fatal=1 --randseed=9"
fio $w2 --filename=/dev/mapper/wb1 --do_verify=0 --output=/tmp/w2 &
fpid=$!
sleep 1
run writeboost-detach 1
wait $fpid || die "the writer failed during the detach"
assert_eq "$(cat $WB_SYSFS/devices/1/cache_id)" 0 "cache_id after detach"
assert_eq "$(cat $WB_SYSFS/caches/1/force_migrate)" 0 "force_migrate restored after detach"
assert_eq "$(cat $WB_SYSFS/caches/1/allow_migrate)" 0 "allow_migrate untouched by detach"
assert_eq "$(cat $WB_SYSFS/caches/1/nr_dirty_caches)" 0 "cache clean after detach"
run fio $fio_args --filename=$WB_BACKING --verify_only --output=/tmp/v3
run fio $w2 --filename=$WB_BACKING --verify_only --output=/tmp/v4

# force_migrate set by the administrator stays set.
run writeboost-attach 1 1
echo 1 > $WB_SYSFS/caches/1/force_migrate
run writeboost-detach 1
assert_eq "$(cat $WB_SYSFS/caches/1/force_migrate)" 1 "force_migrate kept at 1"
run writeboost-remove 1
run writeboost-free-cache 1
run writeboost-remove --mgr
echo "tools detach OK"
