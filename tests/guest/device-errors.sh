# Bad writeboost tables are refused with a clear message and change nothing.
. /wb/tests/lib.sh
set -e

bad_table() { refused_table bad "$1" "$2"; }

bad_table "0 8 writeboost" "expected 3 arguments"
bad_table "0 8 writeboost 1 $WB_BACKING" "expected 3 arguments"
bad_table "0 8 writeboost 1 $WB_BACKING 0 extra" "expected 3 arguments"
bad_table "0 8 writeboost x $WB_BACKING 0" "invalid device_id"
bad_table "0 8 writeboost 0 $WB_BACKING 0" "invalid device_id"
bad_table "0 8 writeboost 128 $WB_BACKING 0" "invalid device_id"
bad_table "0 8 writeboost -1 $WB_BACKING 0" "invalid device_id"
bad_table "0 8 writeboost 1 $WB_BACKING y" "invalid cache_id"
bad_table "0 8 writeboost 1 $WB_BACKING 200" "invalid cache_id"
bad_table "0 8 writeboost 1 /dev/does-not-exist 0" "cannot open backing device"
bad_table "0 8 writeboost 1 $WB_BACKING 7" "cache 7 does not exist"
size=$(sectors_of $WB_BACKING)
bad_table "0 $((size + 8)) writeboost 1 $WB_BACKING 0" "exceeds backing device"
# A backing device of 2^51 sectors (1 EiB) or more is refused (the index
# packs block numbers into 48 bits); 8 sectors less is accepted.
run dm_create huge --table "0 $((1 << 51)) zero"
bad_table "0 8 writeboost 1 /dev/mapper/huge 0" "too large: $((1 << 51)) sectors"
run dmsetup remove huge
run dm_create huge --table "0 $(((1 << 51) - 8)) zero"
run dm_create big1 --table "0 8 writeboost 1 /dev/mapper/huge 0"
run dmsetup remove big1
run dmsetup remove huge

# A device_id in use by another device is refused; the first keeps working.
run dm_create ok1 --table "0 64 writeboost 4 $WB_BACKING 0"
bad_table "0 64 writeboost 4 $WB_BACKING 0" "already used"
run dd if=/dev/zero of=/dev/mapper/ok1 bs=4k count=1 oflag=direct 2>/dev/null
# A reload of the same device with the same id is fine; a different backing is not.
dmsetup table ok1 | dmsetup load ok1 || die "reload with the same table"
run dmsetup clear ok1
echo "0 64 writeboost 4 $WB_CACHE 0" | dmsetup load ok1 && die "reload changed the backing device"
klog_tail 3 | grep -q "cannot change the backing" || die "no clear message for a backing change"
run dmsetup remove ok1
# After removal the id is free again.
run dm_create ok2 --table "0 64 writeboost 4 $WB_BACKING 0"
run dmsetup remove ok2

# Messages to a device.
run dm_create ok3 --table "0 64 writeboost 5 $WB_BACKING 0"
must_fail dmsetup message ok3 0 no_such_message
klog_tail 3 | grep -q "unknown message" || die "no clear message for an unknown device message"
run dmsetup message ok3 0 add_sysfs
[ -d $WB_SYSFS/devices/5 ] || die "add_sysfs did not create devices/5"
assert_eq "$(cat $WB_SYSFS/devices/5/cache_id)" "0" "sysfs cache_id"
assert_eq "$(cat $WB_SYSFS/devices/5/device_no)" "$(cat /sys/block/vda/dev)" "sysfs device_no"
assert_eq "$(cat $WB_SYSFS/devices/5/migrate_threshold)" "70" "default migrate_threshold"
must_fail dmsetup message ok3 0 add_sysfs
echo 55 > $WB_SYSFS/devices/5/migrate_threshold
assert_eq "$(cat $WB_SYSFS/devices/5/migrate_threshold)" "55" "migrate_threshold after write"
for v in 101 -1 abc ""; do
    if echo "$v" > $WB_SYSFS/devices/5/migrate_threshold 2>/dev/null; then die "migrate_threshold accepted '$v'"; fi
done
assert_eq "$(cat $WB_SYSFS/devices/5/migrate_threshold)" "55" "migrate_threshold unchanged by bad input"
run dmsetup message ok3 0 remove_sysfs
[ -d $WB_SYSFS/devices/5 ] && die "remove_sysfs left devices/5"
must_fail dmsetup message ok3 0 remove_sysfs
run dmsetup remove ok3
echo "device errors OK"
