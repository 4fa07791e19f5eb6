# The seed's whole lifecycle with the admin tools (the 2013 `prepare` and
# `terminate` steps): create the manager, format the cache, create two
# devices, resume the cache, attach both, verified I/O, status, detach
# (writing back), remove, free the cache, remove the manager. Nothing but
# the tools touches writeboost.
. /wb/tests/lib.sh
set -e
# Two backing devices carved from the slow disk.
q=$(( $(sectors_of $WB_BACKING) / 4 ))
run dm_create back1 --table "0 $q linear $WB_BACKING 0"
run dm_create back2 --table "0 $q linear $WB_BACKING $q"

# Without udev, /dev/mapper nodes of removed devices stay behind, possibly
# with the number of another device: the tools must not trust them.
mknod /dev/mapper/wa b 7 0

# prepare
run writeboost-create --mgr
run writeboost-format-cache --force $WB_CACHE
run writeboost-create wa 1 /dev/mapper/back1
run writeboost-create wb 2 /dev/mapper/back2
run writeboost-resume-cache 1 $WB_CACHE --flush-current-buffer-interval 1 --commit-super-block-interval 1
assert_eq "$(cat $WB_SYSFS/caches/1/flush_current_buffer_interval)" 1 "tunable set by resume-cache"
want=$(dmsetup info -c --noheadings -o major,minor --separator , wa | tr -d ' ')
have=$(stat -c '%t,%T' /dev/mapper/wa)    # hex
assert_eq "$(printf '%d,%d' 0x${have%,*} 0x${have#*,})" "$want" "node of wa fixed by writeboost-create"
run writeboost-attach 1 1
run writeboost-attach 2 1 --migrate-threshold 50
assert_eq "$(cat $WB_SYSFS/devices/2/migrate_threshold)" 50 "migrate_threshold set by attach"
assert_eq "$(dmsetup table wa | awk '{print $NF}')" 1 "table of wa after attach"
assert_eq "$(cat $WB_SYSFS/devices/1/cache_id)" 1 "cache_id of wa after attach"
run writeboost-status

# Verified I/O on both devices at once (write-back: nothing migrates yet).
for d in wa wb; do
    fio --name=$d --filename=/dev/mapper/$d --direct=1 --ioengine=libaio --iodepth=8 \
        --rw=randwrite --bsrange=512-16k --size=3M --verify=crc32c --verify_fatal=1 \
        --do_verify=0 --randseed=11 --output=/tmp/$d.w &
done
wait
for d in wa wb; do
    run fio --name=$d --filename=/dev/mapper/$d --direct=1 --ioengine=libaio --iodepth=8 \
        --rw=randwrite --bsrange=512-16k --size=3M --verify=crc32c --verify_fatal=1 \
        --verify_only --randseed=11 --output=/tmp/$d.v
done
d1=$(cat $WB_SYSFS/devices/1/nr_dirty_caches); d2=$(cat $WB_SYSFS/devices/2/nr_dirty_caches)
[ "$d1" -gt 0 ] && [ "$d2" -gt 0 ] || die "no dirty lines after writes ($d1, $d2)"
json=$(writeboost-status --json)
echo "$json" | grep -q '"nr_dirty_caches": '"$d1" || die "status --json lacks the dirty count $d1"
echo "$json" | grep -q '"running": false' || die "status --json: daemon"
writeboost-status --cache 1 --counters

# terminate: detach writes everything back; migration was never allowed.
assert_eq "$(cat $WB_SYSFS/caches/1/allow_migrate)" 0 "allow_migrate before detach"
run writeboost-detach 1
assert_eq "$(cat $WB_SYSFS/devices/1/cache_id)" 0 "cache_id after detach"
assert_eq "$(dmsetup table wa | awk '{print $NF}')" 0 "table of wa after detach"
assert_eq "$(cat $WB_SYSFS/caches/1/force_migrate)" 0 "force_migrate restored after detach"
assert_eq "$(cat $WB_SYSFS/caches/1/allow_migrate)" 0 "allow_migrate untouched by detach"
run writeboost-remove 2          # attached: detaches (writes back) first
dmsetup info wb >/dev/null 2>&1 && die "wb still exists"
# The backing devices alone hold the data now.
run fio --name=wa --filename=/dev/mapper/back1 --direct=1 --ioengine=libaio --iodepth=8 \
    --rw=randwrite --bsrange=512-16k --size=3M --verify=crc32c --verify_fatal=1 \
    --verify_only --randseed=11 --output=/tmp/back1.v
run fio --name=wb --filename=/dev/mapper/back2 --direct=1 --ioengine=libaio --iodepth=8 \
    --rw=randwrite --bsrange=512-16k --size=3M --verify=crc32c --verify_fatal=1 \
    --verify_only --randseed=11 --output=/tmp/back2.v
run writeboost-remove 1
[ -e /dev/mapper/wa ] && die "node of the removed wa left behind"
run writeboost-free-cache 1
[ -d $WB_SYSFS/caches/1 ] && die "cache 1 still resumed"
run writeboost-remove --mgr
assert_eq "$(dmsetup ls --target writeboost-mgr | grep -c writeboost-mgr)" 0 "manager removed"
run writeboost-status
run dmsetup remove back1
run dmsetup remove back2
echo "tools lifecycle OK"
