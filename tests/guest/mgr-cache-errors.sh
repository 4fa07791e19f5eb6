# Bad input on every manager message and cache sysfs node: a clear kernel
# log line, a failed command, and nothing changed.
. /wb/tests/lib.sh
set -e
run mgr_create
# Cache messages without a selected (existing) cache.
for m in free_cache clear_stat "allow_migrate 1" flush_current_buffer commit_super_block "barrier_deadline_ms 5"; do
    must_fail mgr_msg $m
done
klog_tail 5 | grep -q "no cache 0" || die "no clear message for a cache message without a cache"
run mgr_msg switch_to 9
must_fail mgr_msg free_cache
# resume_cache / format_cache_device with bad paths or devices.
must_fail mgr_msg resume_cache /dev/nonexistent
klog_tail 2 | grep -q "cannot open" || die "no clear message for a missing cache device"
must_fail mgr_msg format_cache_device /dev/nonexistent
must_fail mgr_msg format_cache_device
must_fail mgr_msg resume_cache
# An unformatted device is refused.
dd if=/dev/zero of=$WB_CACHE bs=1M count=2 oflag=direct 2>/dev/null
must_fail mgr_msg resume_cache $WB_CACHE
klog_tail 2 | grep -q "format it" || die "no clear message for an unformatted cache"
# A too-small device cannot be formatted.
run dm_create tiny --table "0 4096 linear $WB_CACHE 0"
must_fail mgr_msg format_cache_device /dev/mapper/tiny
klog_tail 2 | grep -qi "small" || die "no clear message for a too-small cache device"
run dmsetup remove tiny
# A device in use (here: the backing of a writeboost device) is refused.
run wb_create wbx 3 $WB_BACKING 0 2048
run mgr_msg format_cache_device $WB_CACHE
run mgr_msg switch_to 0
must_fail mgr_msg resume_cache $WB_CACHE
klog_tail 2 | grep -q "select a cache id" || die "no clear message for resume_cache with cache id 0"
run mgr_msg switch_to 4
run mgr_msg resume_cache $WB_CACHE
must_fail mgr_msg resume_cache $WB_CACHE
klog_tail 2 | grep -q "already exists" || die "no clear message for resuming an existing cache"
run mgr_msg switch_to 5
must_fail mgr_msg resume_cache $WB_CACHE
klog_tail 2 | grep -q "busy" || die "no clear message for a cache device already in use"
must_fail mgr_msg format_cache_device $WB_CACHE
run mgr_msg switch_to 4
# Tunables: ranges enforced, values unchanged after a refusal.
for bad in "allow_migrate 2" "allow_migrate x" "allow_migrate" "barrier_deadline_ms 0" \
           "barrier_deadline_ms 10001" "nr_max_batched_migration 0" "nr_max_batched_migration 33" \
           "update_interval -1" "flush_current_buffer 2" "commit_super_block 0" \
           "migrate_threshold 3 101" "migrate_threshold 99 50" "migrate_threshold 3" "bogus 1"; do
    must_fail mgr_msg $bad
done
c=$WB_SYSFS/caches/4
assert_eq "$(cat $c/allow_migrate)" "0" "allow_migrate default"
assert_eq "$(cat $c/barrier_deadline_ms)" "3" "barrier_deadline_ms default"
assert_eq "$(cat $c/update_interval)" "1" "update_interval default"
run mgr_msg barrier_deadline_ms 7
assert_eq "$(cat $c/barrier_deadline_ms)" "7" "barrier_deadline_ms via message"
run mgr_msg migrate_threshold 3 40
assert_eq "$(cat $WB_SYSFS/devices/3/migrate_threshold)" "40" "migrate_threshold via message"
for node in allow_migrate force_migrate barrier_deadline_ms nr_max_batched_migration update_interval \
            commit_super_block_interval flush_current_buffer_interval; do
    before=$(cat $c/$node)
    for v in -1 abc 999999 "1 2" ""; do
        if echo "$v" > $c/$node 2>/dev/null; then die "$node accepted '$v'"; fi
    done
    assert_eq "$(cat $c/$node)" "$before" "$node unchanged by bad input"
done
echo 1 > $c/allow_migrate; assert_eq "$(cat $c/allow_migrate)" "1" "allow_migrate via sysfs"
echo 1 > $c/flush_current_buffer || die "flush_current_buffer via sysfs"
echo 1 > $c/commit_super_block || die "commit_super_block via sysfs"
if echo 5 > $c/last_flushed_segment_id 2>/dev/null; then die "read-only node accepted a write"; fi
# Status of the selected cache lists all 16 counters.
n=$(dmsetup status writeboost-mgr | grep -cE '^[01] [01] [01] [01] [0-9]+$')
assert_eq "$n" "16" "counter lines in the status"
run dmsetup remove wbx
run mgr_msg free_cache
echo "mgr cache errors OK"
