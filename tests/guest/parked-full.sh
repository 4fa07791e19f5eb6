# Two devices' parked data fill 28 of a 31-segment cache: device 7's
# write-back is paused (another table holds its disk), device 8's disk is
# dead (dm-error). Device 9 is healthy but the cache has no room for it:
# after 30 s without room its writes go around the cache to its disk (it
# has nothing in the log), never hang, and are durable with fsync; once
# device 8's disk heals and the other table goes, everything drains intact
# and device 9 writes through the cache again.
# breakL found the hang: the migrator kept moving the parked lines round
# the log, every move counted as progress, so the waiting writes never
# timed out (not even for kill -9). The moves themselves must stop too.
# Before the write-around fallback, device 9's writes failed with EIO.
. /wb/tests/lib.sh
set -e
trap "set +e; dmsetup remove o7 2>/dev/null; true" EXIT
run small_cache_setup 32
sz=$((64 * 2048))
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b8 --table "0 $sz linear $WB_BACKING $sz"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run dd if=/dev/zero of=/dev/mapper/b7 bs=1M count=14 oflag=direct 2>/dev/null
run dd if=/dev/zero of=/dev/mapper/b8 bs=1M count=14 oflag=direct 2>/dev/null
run wb_create wb7 7 /dev/mapper/b7 1
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 0
run timeout 60 wbpattern fill /dev/mapper/wb7 --region 0:14M --gen 1000 --seed 7
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:14M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
run dm_create o7 --table "0 $sz linear /dev/mapper/b7 0"
run dmsetup remove wb7
run dm_swap b8 "0 $sz error"
run mgr_msg allow_migrate 1
sleep 3

# Device 9's write: around the cache after the 30 s without room (with
# margin for a slow guest), not a hang, not EIO.
dd if=/dev/urandom of=/tmp/n9 bs=4k count=256 2>/dev/null
r0=$(mgr_status_value nr_relocated_lines)
t0=$(date +%s)
rc=0
timeout 120 dd if=/tmp/n9 of=/dev/mapper/wb9 bs=4k count=256 oflag=direct conv=fsync 2>/dev/null || rc=$?
t=$(( $(date +%s) - t0 ))
echo "device 9's write: status $rc after $t s; relocated lines: $(mgr_status_value nr_relocated_lines)"
[ $rc != 124 ] && [ $rc != 143 ] || die "device 9's write hung (killed after 120 s)"
[ $rc = 0 ] || { klog_tail 5; die "device 9's write failed (status $rc) though it has nothing in the log and could go around it"; }
[ $t -le 75 ] || die "device 9's write took $t s"
read_blocks /dev/mapper/wb9 0 256 /tmp/r
cmp -s /tmp/r /tmp/n9 || die "device 9 reads back $(sector_summary /tmp/r)"
read_blocks /dev/mapper/b9 0 256 /tmp/r
cmp -s /tmp/r /tmp/n9 || die "device 9's disk holds $(sector_summary /tmp/r), not the write that went around the cache"
# Its next writes go around at once (no second 30 s wait).
t0=$(date +%s)
run timeout 60 dd if=/tmp/n9 of=/dev/mapper/wb9 bs=4k seek=1000 count=256 oflag=direct conv=fsync 2>/dev/null
t=$(( $(date +%s) - t0 ))
[ $t -le 15 ] || die "device 9's second write took $t s"
# No churn: packed, the parked lines leave no segment for writers, so
# moving them gives device 9 nothing (before, about 14,000 lines a second
# went round the log while it waited, 400,000 in the 30 s). Retries of the
# dead disk's write-back move the other device's lines out of its way now
# and then (3584 lines, at growing intervals): at most 10 passes over the
# 7168 parked lines.
moved=$(( $(mgr_status_value nr_relocated_lines) - r0 ))
echo "parked lines moved while device 9 waited: $moved"
[ $moved -le 71680 ] || die "$moved parked lines were moved while device 9 waited, for no room"
dmesg | grep -q "cache 1: no room in the log for 30 s" || die "no 'no room in the log' message"
[ "$(cache_dirty)" -ge 7168 ] || die "parked lines were dropped: $(cache_dirty) dirty lines"

# Device 8's disk heals, the other table goes: everything drains.
run dm_swap b8 "0 $sz linear $WB_BACKING $sz"
run wait_clean 8 180
run dmsetup remove o7
wait_cache_clean 120 || die "the parked data never drained"
run wbpattern check /dev/mapper/b7 --region 0:14M --ops 0 --initial gen:1000 --seed 7
run wbpattern check /dev/mapper/b8 --region 0:14M --ops 0 --initial gen:1000 --seed 8
run mgr_msg allow_migrate 0
run timeout 60 wbpattern write /dev/mapper/wb9 --region 0:8M --ops 1024 --sizes 4K --seed 9 --gen-base 2000
d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches)
[ "$d9" -gt 0 ] || die "device 9's writes after the drain did not go through the cache (0 dirty lines)"
run wbpattern check /dev/mapper/wb9 --region 0:8M --ops 1024 --sizes 4K --seed 9 --gen-base 2000
