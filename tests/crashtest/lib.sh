# Guest side of the crash-point harness (busybox sh), copied to
# /wb/crashtest/lib.sh by scripts/guest.py. Needs /wb/tests/lib.sh.
#
#   . /wb/tests/lib.sh; . /wb/crashtest/lib.sh
#   CT_POINTS=40 ct_main
#
# ct_main records a workload on writeboost through dm-log-writes, then
# replays the log crash point by crash point and checks every sector
# (wbcrash check). Layout of the logged disk (a loop device in tmpfs, like
# the log, the replay scratch disk and the snapshot's COW store):
#
#   [ cache slice CT_CACHE_MB | backing of dev 1 CT_DEV_MB | backing of dev 2 CT_DEV_MB ]
#
# Parameters (environment), with defaults:
#   CT_POINTS=200     crash points to check
#   CT_SEED=1         workload and crash-point seed
#   CT_OPS=400        ops per device (at least: see wbcrash work)
#   CT_CACHE_MB=12    cache slice (1 MiB superblock region + 1 MiB segments)
#   CT_DEV_MB=4       each writeboost device
#   CT_LOG_MB=512     room for the log (tmpfs: only what is used costs RAM)
#   CT_IDLE=2         seconds of migration after the workload, before teardown
#   CT_STACK=writeboost, or raw: the workload writes the slices directly (a
#                     self-test of the harness: it must find no violation)
#   CT_MIX=8:5:5:50:30  percent of flushes, FUA writes, discards (the rest:
#                     plain writes); percent of writes in the hot zone; percent
#                     of writes rewriting all or part of one of the last 8
#                     (see tests/crashtest/src/plan.rs)
#   CT_PAUSE_EVERY=0 CT_PAUSE_MS=0   writer pauses (let migration interleave)
#   CT_CHECK_ARGS=    more arguments for wbcrash check (--discard lax, -v, ...)
#   CT_WORK_TIMEOUT=300  seconds before the workload counts as hung

# ct_loop <file>: attach a loop device (busybox or util-linux losetup).
ct_loop() {
    _l=$(losetup -f) && losetup "$_l" "$1" && echo "$_l"
}

# ct_watch <pid> <seconds> <what>: wait for <pid>; if it is still running
# after <seconds>, show where its threads sleep and what the kernel's
# blocked tasks are doing, kill it and fail.
ct_watch() {
    _i=0
    while kill -0 "$1" 2>/dev/null; do
        _i=$((_i + 1))
        if [ $_i -gt $(($2 * 2)) ]; then
            echo "crashtest: $3 still running after $2s: a hang"
            for _t in /proc/$1/task/*; do
                echo "--- thread $(basename $_t) ($(cat $_t/comm)): wchan $(cat $_t/wchan 2>/dev/null)"
                cat $_t/stack 2>/dev/null
            done
            dmsetup status writeboost-mgr 2>/dev/null | grep -E "segment|cursor|dirty|error"
            [ -n "$logd" ] && echo "last log entries (as far as the log super block counts):" &&
                wbcrash dump --log "$logd" --tail 30
            echo w > /proc/sysrq-trigger
            sleep 2
            kill -9 "$1"
            die "$3 hung (see the stacks above)"
        fi
        sleep 0.5
    done
}

ct_mark() {
    dmsetup message wbct-log 0 mark "$1" || die "mark $1 failed"
}

# Leaves nothing behind, whatever happened (an EXIT trap of the test).
ct_cleanup() {
    wb_teardown_all >/dev/null 2>&1
    for l in $cow $scratch $logd $data; do losetup -d "$l" 2>/dev/null; done
    umount /tmp/ct 2>/dev/null
    true
}

ct_main() {
    : "${CT_POINTS:=200}" "${CT_SEED:=1}" "${CT_OPS:=400}" "${CT_CACHE_MB:=12}" "${CT_DEV_MB:=4}"
    : "${CT_LOG_MB:=512}" "${CT_IDLE:=2}" "${CT_STACK:=writeboost}" "${CT_PAUSE_EVERY:=0}" "${CT_PAUSE_MS:=0}"
    : "${CT_CHECK_ARGS:=}" "${CT_WORK_TIMEOUT:=300}" "${CT_MIX:=8:5:5:50:30}"
    command -v wbcrash >/dev/null || die "wbcrash is not in the guest (build tests/crashtest)"
    t_start=$(date +%s)
    csz=$((CT_CACHE_MB * 2048))
    dsz=$((CT_DEV_MB * 2048))
    total=$((csz + 2 * dsz))
    total_mb=$((CT_CACHE_MB + 2 * CT_DEV_MB))
    d=/tmp/ct
    mkdir -p $d
    trap ct_cleanup EXIT
    mount -t tmpfs -o size=$((CT_LOG_MB + 3 * total_mb + 16))m wbct $d || die "tmpfs"
    dd if=/dev/zero of=$d/data.img bs=1M count=0 seek=$total_mb 2>/dev/null
    dd if=/dev/zero of=$d/scratch.img bs=1M count=0 seek=$total_mb 2>/dev/null
    dd if=/dev/zero of=$d/cow.img bs=1M count=0 seek=$((total_mb + 8)) 2>/dev/null
    dd if=/dev/zero of=$d/log.img bs=1M count=0 seek=$CT_LOG_MB 2>/dev/null
    data=$(ct_loop $d/data.img) || die "losetup data"
    logd=$(ct_loop $d/log.img) || die "losetup log"
    scratch=$(ct_loop $d/scratch.img) || die "losetup scratch"
    cow=$(ct_loop $d/cow.img) || die "losetup cow"
    echo "crashtest: stack $CT_STACK, seed $CT_SEED, $CT_OPS ops per device (mix $CT_MIX), $CT_POINTS crash points;" \
         "cache ${CT_CACHE_MB} MiB, devices ${CT_DEV_MB} MiB; data $data log $logd scratch $scratch cow $cow"

    # --- record ---
    run dm_create wbct-log --table "0 $total log-writes $data $logd"
    ct_mark "ct:layout:cache=0+$csz,1=$csz+$dsz,2=$((csz + dsz))+$dsz"
    run dm_create wbct-rec-cache --table "0 $csz linear /dev/mapper/wbct-log 0"
    run dm_create wbct-slice1 --table "0 $dsz linear /dev/mapper/wbct-log $csz"
    run dm_create wbct-slice2 --table "0 $dsz linear /dev/mapper/wbct-log $((csz + dsz))"
    if [ "$CT_STACK" = writeboost ]; then
        run mgr_create
        run mgr_msg format_cache_device /dev/mapper/wbct-rec-cache
        ct_mark ct:formatted
        run mgr_msg switch_to 1
        run mgr_msg resume_cache /dev/mapper/wbct-rec-cache
        run mgr_msg allow_migrate 1
        ct_mark ct:resumed
        run wb_create wbct-rec-wb1 1 /dev/mapper/wbct-slice1 1
        run wb_create wbct-rec-wb2 2 /dev/mapper/wbct-slice2 1
        w1=/dev/mapper/wbct-rec-wb1
        w2=/dev/mapper/wbct-rec-wb2
        echo "write cache of wbct-rec-wb1: $(cat /sys/block/dm-$(dmsetup info -c --noheadings -o minor wbct-rec-wb1)/queue/write_cache)"
    else
        w1=/dev/mapper/wbct-slice1
        w2=/dev/mapper/wbct-slice2
    fi
    # Raw: a plain write and a FUA write of one sector in one flush epoch are
    # logged in the wrong order (plain writes wait for the next flush), so
    # the self-test flushes before each FUA write (the marks say so).
    fbf=
    [ "$CT_STACK" = raw ] && fbf=--flush-before-fua
    echo "+ wbcrash work --log wbct-log --dev 1:$w1 --dev 2:$w2 --seed $CT_SEED --ops $CT_OPS --mix $CT_MIX $fbf"
    wbcrash work --log wbct-log --dev 1:$w1 --dev 2:$w2 --seed "$CT_SEED" --ops "$CT_OPS" --mix "$CT_MIX" \
        --pause-every "$CT_PAUSE_EVERY" --pause-ms "$CT_PAUSE_MS" $fbf &
    wpid=$!
    ct_watch $wpid "$CT_WORK_TIMEOUT" workload
    wait $wpid || die "the workload failed"
    if [ "$CT_STACK" = writeboost ]; then
        dmsetup status writeboost-mgr | grep -E "nr_segments|last_flushed|last_migrated|nr_dirty|current_id" || true
        sleep "$CT_IDLE"
        run dmsetup remove wbct-rec-wb1
        run dmsetup remove wbct-rec-wb2
        run mgr_msg free_cache
        run dmsetup remove writeboost-mgr
    fi
    run dmsetup remove wbct-rec-cache wbct-slice1 wbct-slice2
    echo "log-writes status (entries, last sector): $(dmsetup status wbct-log)"
    dmsetup status wbct-log | grep -q logging_disabled && die "the log overflowed: raise CT_LOG_MB"
    run dmsetup remove wbct-log
    t_rec=$(date +%s)
    echo "crashtest: recorded in $((t_rec - t_start))s"

    # --- check ---
    # shellcheck disable=SC2086
    wbcrash check --log "$logd" --scratch "$scratch" --cow "$cow" --points "$CT_POINTS" \
        --seed "$CT_SEED" --stack "$CT_STACK" $CT_CHECK_ARGS &
    cpid=$!
    ct_watch $cpid $((120 + CT_POINTS * 20)) "wbcrash check"
    wait $cpid
    rc=$?
    echo "crashtest: checked in $(($(date +%s) - t_rec))s, total $(($(date +%s) - t_start))s (guest time)"
    ct_cleanup
    trap - EXIT
    case $rc in
        0) return 0 ;;
        1) die "crash-point violations (see above)" ;;
        *) die "wbcrash check failed (exit $rc)" ;;
    esac
}
