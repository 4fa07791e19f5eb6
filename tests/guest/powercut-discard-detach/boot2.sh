# After the cut: re-create both devices (cache 0) and resume both caches.
# Resume must succeed (device 1 no longer needs cache 1; device 2 is there),
# and blocks 1000..1063 of both devices must read 'C', also after the
# caches are drained and the devices detached.
. /wb/tests/lib.sh
set -e
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 262144
run dm_create back2 --table "0 131072 linear $WB_BACKING 262144"
run dm_create c2raw --table "0 131072 linear $WB_BACKING 524288"
run wb_create wb2 2 /dev/mapper/back2 0
mkfill C $((64 * 4096)) /tmp/C

bad=""
fail() {
    echo "FAIL: $1: $2" >&2
    bad="$bad $1"
}
# check <variant> <device> <when>
check() {
    read_blocks $2 1000 64 /tmp/r
    cmp -s /tmp/r /tmp/C || fail $1 "$2 $3: blocks 1000..1063 (written 'C' and flushed after the discard) read $(sector_summary /tmp/r)"
}
resumed=""
for v in "DD2 2 /dev/mapper/c2raw" "DD1 1 $WB_CACHE"; do
    set -- $v
    run mgr_msg switch_to $2
    echo "+ mgr_msg resume_cache $3"
    if mgr_msg resume_cache $3; then
        resumed="$resumed $2"
    else
        fail $1 "resume_cache of cache $2 refused: $(klog_tail 1)"
    fi
done
check DD1 /dev/mapper/wb1 "after resume"
check DD2 /dev/mapper/wb2 "after resume"
# Drain whatever the caches hold, detach, check again.
for c in $resumed; do
    echo 1 > $WB_SYSFS/caches/$c/allow_migrate
done
wait_clean 1 60
wait_clean 2 60
check DD1 /dev/mapper/wb1 "after draining"
check DD2 /dev/mapper/wb2 "after draining"
run wb_set_cache wb1 0
run wb_set_cache wb2 0
check DD1 $WB_BACKING "(backing disk, drained, detached)"
check DD2 /dev/mapper/back2 "(backing disk, drained, detached)"
[ -z "$bad" ] || die "pre-discard data or a refused resume after the power cut in:$bad"
echo "discard + detach power cut OK"
