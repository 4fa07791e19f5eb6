# Power cut during migration on a small cache (7 segments) whose log has
# wrapped several times: more data than the cache holds was written, so
# migration ran urgently and slots were reused.
. /wb/tests/lib.sh
set -e
run mgr_create
run dm_create smallcache --table "0 $((8 * 2048)) linear $WB_CACHE 0"
run mgr_msg format_cache_device /dev/mapper/smallcache
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/smallcache
assert_eq "$(mgr_status_value nr_segments)" "7" "segments of an 8 MiB cache"
run wb_create wb1 1 $WB_BACKING 2 $((256 * 2048))
dd if=/dev/urandom of=/tmp/d1 bs=1M count=24 2>/dev/null
run dd if=/tmp/d1 of=$WB_BACKING bs=1M seek=400 oflag=direct conv=fsync 2>/dev/null
# 24 MiB through a 7 MiB log: wraps about four times.
run dd if=/tmp/d1 of=/dev/mapper/wb1 bs=4k seek=1024 oflag=direct conv=fsync 2>/dev/null
lm=$(mgr_status_value last_migrated_segment_id)
[ "$lm" -ge 10 ] || die "expected urgent migration to have freed segments (last migrated $lm)"
# Keep migrating while new writes arrive, and cut in the middle.
run mgr_msg allow_migrate 1
dd if=/tmp/d1 of=/dev/mapper/wb1 bs=4k seek=$((1024 + 6144)) count=1024 oflag=direct conv=fsync 2>/dev/null
sleep 1
wb_powercut
