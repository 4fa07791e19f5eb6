# free_cache while a removed device's lines are written back but not yet
# on the record (a dead disk's parked lines in front, the cache device
# slowed to 1 s per I/O so that moving them takes longer than free_cache
# waits): refused after 10 s (EBUSY, with a message), not freed; once the
# record passes them, free_cache frees, and the device created again over
# its disk (cache_id 0, pass-through) keeps what it writes after a resume
# of the cache. breakP: freed anyway after the wait, the resume replayed
# device 9's older lines over the newer data (4096 wrong sectors).
. /wb/tests/lib.sh
set -e
run removed_behind_parked 1000
[ "$(mgr_status_value record_migrated_segment_id)" = 0 ] || die "set-up: the record passed device 9's lines at once"
run dmsetup remove wb8
run mgr_msg switch_to 1
must_fail mgr_msg free_cache
klog_tail 2 | grep -q "free_cache: cache 1 holds lines of removed device_id 9 written back but not yet on its record" || { klog_tail 3; die "no message for the refused free_cache"; }
dmsetup status writeboost-mgr | grep -q "^nr_dirty_caches: 3584" || die "the refused free_cache freed the cache"
run dm_swap cdev "0 $((32 * 2048)) linear $WB_CACHE 0"
_i=0
until mgr_msg free_cache 2>/dev/null; do
    _i=$((_i + 1))
    [ $_i -lt 12 ] || die "free_cache still refused after a minute"
    sleep 5
done
run dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b9 0"
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen 3000 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
run dm_create wb8 --table "0 $sz writeboost 8 /dev/mapper/b8 0"
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
run mgr_msg allow_migrate 1
sleep 5
run wbpattern check /dev/mapper/wb9 --region 0:2M --ops 0 --seed 9 --initial gen:3000
run wbpattern check /dev/mapper/b9 --region 0:2M --ops 0 --seed 9 --initial gen:3000
echo PASS
