# A removed device's lines written back behind a dead disk's parked ones
# stay in the log as dirty for a replay until the record passes them.
# Device 9 is created again in that window (cache_id 0, pass-through
# asked): its I/O must go through the cache that holds those lines, so
# that what it writes supersedes them there; written around the cache, a
# replay after a power cut would put the older lines back over it.
# Boot 1: device 9 removed dirty, written back past device 8's parked
# lines (the cache device delayed, so the record takes seconds to pass
# them); device 9 re-created in the window writes V2, fsync, power cut.
# Boot 2: device 9 reads V2, and after the drain its disk holds V2.
. /wb/tests/lib.sh
set -e
# Every cache-device I/O waits 200 ms once device 9 is removed.
run removed_behind_parked 200
rec=$(mgr_status_value record_migrated_segment_id)
echo "device 9 written back; record at $rec"
[ "$rec" = 0 ] || die "set-up: the record passed device 9's lines before its re-creation (window missed; the cache device's delay is too short)"
run dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b9 0"
run dmsetup message wb9 0 add_sysfs
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen 3000 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
echo "V2 written; record at $(mgr_status_value record_migrated_segment_id); device 9 dirty $(cat $WB_SYSFS/devices/9/nr_dirty_caches)"
wb_powercut
