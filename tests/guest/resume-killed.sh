# The dmsetup whose ioctl replays a log is killed (SIGKILL: a service
# manager's start timeout): the replay stops at once with a clear message
# instead of reading the rest of the log for nothing, the cache is not
# resumed and leaves nothing behind, and a later resume has all the data.
# Both forms: resume_cache of the manager, and a 2.2 table load.
. /wb/tests/lib.sh
set -e
CSZ=$((40 * 2048))
BSZ=$((32 * 2048))
run dm_create cdev --table "0 $CSZ linear $WB_CACHE 0"
run dm_create c22 --table "0 $CSZ linear $WB_CACHE $CSZ"
run dm_create b1 --table "0 $BSZ linear $WB_BACKING 0"
run dm_create b2 --table "0 $BSZ linear $WB_BACKING $BSZ"
PAT="--region 0:24M --ops 0 --initial gen:4000000 --seed 41"

# slow <dm name> <offset> <ms>: the cache device behind dm-delay (0: none).
slow() {
    if [ "$3" = 0 ]; then t="0 $CSZ linear $WB_CACHE $2"; else t="0 $CSZ delay $WB_CACHE $2 $3"; fi
    echo "$t" | dmsetup load $1 && dmsetup suspend $1 && dmsetup resume $1
}

# killed <what> <command...>: runs the command in the background, kills its
# dmsetup 0.4 s in, and checks that it ended within 3 s with the message.
killed() {
    what=$1; shift
    rm -f /tmp/done
    klog_mark
    ( set +e; "$@"; touch /tmp/done ) &
    usleep 400000
    [ -f /tmp/done ] && die "$what: finished before it was killed (replay too fast for this test)"
    pid=$(pidof dmsetup) || die "$what: no dmsetup running"
    run kill -9 $pid
    i=0
    while [ ! -f /tmp/done ]; do
        i=$((i + 1)); [ $i -lt 30 ] || die "$what: still running 3 s after the kill"
        usleep 100000
    done
    log=$(klog_since)
    echo "$log" | grep -q "interrupted by a fatal signal after [0-9]* ms of replay (error -4): the cache is not resumed; resume it again" \
        || { echo "$log" | tail -5; die "$what: no message that the killed replay stopped"; }
    echo "$log" | grep -q "resume read .* segment headers" && die "$what: the whole log was replayed after the kill"
    return 0
}

# 1. resume_cache of the manager.
run mgr_create
run mgr_msg format_cache_device /dev/mapper/cdev
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
run wb_create wb1 1 /dev/mapper/b1 1
run wbpattern fill /dev/mapper/wb1 --region 0:24M --gen 4000000 --seed 41
run dmsetup remove wb1
run mgr_msg free_cache
run wb_create wb1 1 /dev/mapper/b1 0
run slow cdev 0 60
killed resume_cache mgr_msg resume_cache /dev/mapper/cdev
[ -d $WB_SYSFS/caches/1 ] && die "cache 1 is live after the killed resume"
run slow cdev 0 0
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
run wbpattern check /dev/mapper/wb1 $PAT
run dmsetup remove wb1
run mgr_msg free_cache

# 2. A 2.2 table load (its private cache is replayed in the constructor).
T="0 $BSZ writeboost /dev/mapper/b2 /dev/mapper/c22"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
run dm_create w22 --table "$T 2 writeback_threshold 0"
run wbpattern fill /dev/mapper/w22 --region 0:24M --gen 4000000 --seed 41
run dmsetup remove w22
run slow c22 $CSZ 60
killed "2.2 table load" dmsetup create w22 --table "$T"
[ -n "$(dmsetup table w22 2>/dev/null)" ] && die "w22 has a live table after the killed load"
dmsetup info w22 >/dev/null 2>&1 && run dmsetup remove w22
run slow c22 $CSZ 0
run dm_create w22 --table "$T"
run wbpattern check /dev/mapper/w22 $PAT
run dmsetup remove w22
echo "killed resumes OK"
