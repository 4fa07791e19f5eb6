# A removed device's dirty data fills two thirds of a small cache (31
# segments) and its write-back is paused (another table holds its disk).
# Another device writes 2.5 times the cache through it: every write goes in
# (the migrator moves the paused lines out of the way, packed, and writers
# cannot take the room a move needs), nothing is written to the held disk,
# and once that table is gone the paused data is written back intact.
# breakK found this: the healthy device's writes failed with EIO after
# "no room in the log for 30 s".
. /wb/tests/lib.sh
set -e
trap "set +e; dmsetup remove other7 2>/dev/null; true" EXIT
run small_cache_setup 32
assert_eq "$(mgr_status_value nr_segments)" 31 "segments of the 32 MiB cache"
sz=$((64 * 2048))
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run dd if=/dev/zero of=/dev/mapper/b7 bs=1M count=20 oflag=direct 2>/dev/null
run wb_create wb7 7 /dev/mapper/b7 1
run wb_create wb9 9 /dev/mapper/b9 1
run wbpattern fill /dev/mapper/wb7 --region 0:20M --gen 1000 --seed 7
run dm_create other7 --table "0 $sz linear /dev/mapper/b7 0"
klog_mark
run dmsetup remove wb7
klog_since | grep -q "cannot claim backing device .* of removed device_id 7" || die "device 7's write-back is not paused"
assert_eq "$(cache_dirty)" 5120 "device 7's dirty lines"
run mgr_msg allow_migrate 1

# 48 MiB written in order, then 3000 random 4 KiB and 64 KiB writes over it.
rc=0
timeout 300 wbpattern fill /dev/mapper/wb9 --region 0:48M --gen 1000 --seed 9 || rc=$?
[ $rc = 0 ] || { klog_since | grep -v "paused\|cannot claim" | tail -5; die "device 9's writes failed or hung (status $rc)"; }
rc=0
timeout 300 wbpattern write /dev/mapper/wb9 --region 0:48M --ops 3000 --sizes 4K,64K --seed 9 --gen-base 2000 || rc=$?
[ $rc = 0 ] || { klog_since | grep -v "paused\|cannot claim" | tail -5; die "device 9's random writes failed or hung (status $rc)"; }
run wbpattern check /dev/mapper/wb9 --region 0:48M --ops 3000 --sizes 4K,64K --seed 9 --gen-base 2000 --initial gen:1000
relocated=$(mgr_status_value nr_relocated_lines)
echo "relocated lines: $relocated"
[ "$relocated" -gt 0 ] || die "nothing was relocated"
d=$(cache_dirty)
[ "$d" -ge 5120 ] || die "device 7's dirty lines were dropped: the cache has $d"
dd if=/dev/mapper/other7 bs=1M count=20 iflag=direct 2>/dev/null | cmp -s -n $((20 << 20)) - /dev/zero \
    || die "write-back wrote to the disk another table holds"

# The other table goes: the claim is retried, device 7's data drains.
run wait_clean 9 120
run dmsetup remove wb9
run dmsetup remove other7
wait_cache_clean 120 || die "device 7's data was never written back"
run wbpattern check /dev/mapper/b7 --region 0:20M --ops 0 --initial gen:1000 --seed 7
