# Data flushed into the cache log, then discarded, the device detached, and
# new data written through the pass-through device (and flushed): a power
# cut must never bring the pre-discard data back over it.
#   DD1  device 1 (wb1) on cache 1 ($WB_CACHE): 'D' x 64 blocks at block
#        1000 + fsync, discard them, detach (cache_id 0), 'C' + fsync
#        through the now pass-through device; it stays detached.
#   DD2  device 2 (wb2, its own slice of the slow disk) on cache 2 (another
#        slice of the slow disk): the same, then attached to cache 2 again.
# Migration is off on both caches throughout.
. /wb/tests/lib.sh
set -e
run cache_setup
run mgr_msg allow_migrate 0
run wb_create wb1 1 $WB_BACKING 1 262144
run dm_create back2 --table "0 131072 linear $WB_BACKING 262144"
run dm_create c2raw --table "0 131072 linear $WB_BACKING 524288"
run mgr_msg format_cache_device /dev/mapper/c2raw
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/c2raw
run mgr_msg allow_migrate 0
run wb_create wb2 2 /dev/mapper/back2 2
mkfill D $((64 * 4096)) /tmp/D; mkfill C $((64 * 4096)) /tmp/C

# detach_after_discard <name> <device_id> <cache_id>: detach; a module may
# want migration to pass over the discarded lines first, so if the detach
# is refused, allow migration and retry for up to 30 s.
detach_after_discard() {
    _t=0
    echo "+ wb_set_cache $1 0"
    until wb_set_cache $1 0; do
        klog_tail 2
        _t=$((_t + 1))
        [ $_t -lt 30 ] || die "$1: detach refused 30 s after all its data was discarded"
        echo 1 > $WB_SYSFS/caches/$3/allow_migrate
        sleep 1
    done
    echo 0 > $WB_SYSFS/caches/$3/allow_migrate
    assert_eq "$(cat $WB_SYSFS/devices/$2/cache_id)" 0 "$1: cache_id after the detach"
}

for v in "wb1 1 1 $WB_BACKING" "wb2 2 2 /dev/mapper/back2"; do
    set -- $v
    run dd if=/tmp/D of=/dev/mapper/$1 bs=4k seek=1000 oflag=direct conv=fsync 2>/dev/null
    echo "$1: $(cat $WB_SYSFS/devices/$2/nr_dirty_caches) dirty lines, cache $3 last_flushed_segment_id $(cache_value $3 last_flushed_segment_id)"
    run blkdiscard -o $((1000 * 4096)) -l $((64 * 4096)) /dev/mapper/$1
    echo "$1: $(cat $WB_SYSFS/devices/$2/nr_dirty_caches) dirty lines after the discard"
    detach_after_discard $1 $2 $3
    run dd if=/tmp/C of=/dev/mapper/$1 bs=4k seek=1000 oflag=direct conv=fsync 2>/dev/null
    read_blocks $4 1000 64 /tmp/r
    cmp -s /tmp/r /tmp/C || die "$1: a write through the detached device did not reach the backing device: $(sector_summary /tmp/r)"
done
# DD2: attached to its cache again (registered again, nothing cached).
run wb_set_cache wb2 2
read_blocks /dev/mapper/wb2 1000 64 /tmp/r
cmp -s /tmp/r /tmp/C || die "wb2 after attaching again reads $(sector_summary /tmp/r)"
wb_powercut
