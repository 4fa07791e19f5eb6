# writeboost-daemon: start/status/stop with a pid file; allow_migrate
# follows the backing disk's load (io_ticks over elapsed time) around the
# device's migrate_threshold; force_migrate overrides it; an interval of 0
# disables an action instead of crashing; idle RAM buffers are flushed and
# superblocks committed periodically; devices and caches come and go.
. /wb/tests/lib.sh
set -e
run writeboost-create --mgr
run writeboost-format-cache --force $WB_CACHE
run writeboost-create wb1 1 $WB_BACKING --sectors $((256 * 2048))
run writeboost-resume-cache 1 $WB_CACHE --update-interval 1
run writeboost-attach 1 1 --migrate-threshold 50
c=$WB_SYSFS/caches/1
log=/tmp/daemon.log
# Never leave a daemon behind for the next test, even on failure.
trap 'writeboost-daemon stop >/dev/null 2>&1 || true' EXIT

# wait_for <file> <value> <seconds> <what>
wait_for() {
    _i=0
    while [ "$(cat $1)" != "$2" ]; do
        _i=$((_i + 1))
        [ $_i -le $(($3 * 5)) ] || { cat $log; die "$4: $1 is $(cat $1), expected $2 within $3 s"; }
        sleep 0.2
    done
    echo "ok: $4 ($1 = $2 after ~$((_i / 5)) s)"
}

# load <seconds>: random reads straight to the backing disk, beyond the device.
load() {
    fio --name=load --filename=$WB_BACKING --direct=1 --ioengine=libaio --iodepth=4 \
        --rw=randread --bs=4k --offset=300M --size=100M --time_based --runtime=$1 \
        --output=/tmp/load.out &
}

must_fail writeboost-daemon status
run writeboost-daemon start --verbose --log-file $log
run writeboost-daemon status
pid=$(cat /run/writeboost/daemon.pid)
must_fail writeboost-daemon start --log-file $log

# Idle backing disk: migration allowed.
assert_eq "$(cat $c/allow_migrate)" 0 "allow_migrate before the daemon decides"
wait_for $c/allow_migrate 1 5 "idle backing disk"

# Busy backing disk (above migrate_threshold 50%): migration stops, and
# comes back when the load ends.
load 10
wait_for $c/allow_migrate 0 6 "busy backing disk"
grep -q "cache 1: allow_migrate 1 -> 0: device 1: backing $(cat /sys/block/vda/dev) is [0-9]*% busy, above its migrate_threshold 50%" $log || { cat $log; die "no reason logged for stopping migration"; }
# force_migrate overrides the load.
echo 1 > $c/force_migrate
wait_for $c/allow_migrate 1 4 "force_migrate under load"
echo 0 > $c/force_migrate
wait_for $c/allow_migrate 0 4 "force_migrate cleared under load"
wait
wait_for $c/allow_migrate 1 6 "load ended"

# migrate_threshold 100: even a saturated disk does not stop migration.
echo 100 > $WB_SYSFS/devices/1/migrate_threshold
load 4
sleep 3
assert_eq "$(cat $c/allow_migrate)" 1 "threshold 100 under load"
wait
echo 50 > $WB_SYSFS/devices/1/migrate_threshold

# update_interval 0 disables modulation (the seed's daemon crashed).
echo 0 > $c/update_interval
echo 0 > $c/allow_migrate
sleep 3
assert_eq "$(cat $c/allow_migrate)" 0 "allow_migrate left alone with update_interval 0"
run writeboost-daemon status
echo 2 > $c/update_interval
wait_for $c/allow_migrate 1 6 "update_interval 2"

# Idle flush: a lone write stays in the RAM buffer until the daemon flushes
# it (flush_current_buffer_interval 1). The kernel's own idle sealing is
# off here (idle_seal_ms 0), so that only the daemon can flush it.
echo 0 > $c/idle_seal_ms
run dd if=/dev/urandom of=/dev/mapper/wb1 bs=4k count=2 oflag=direct 2>/dev/null
lf=$(cat $c/last_flushed_segment_id)
sleep 2
assert_eq "$(cat $c/last_flushed_segment_id)" "$lf" "nothing flushes with the interval at 0"
echo 1 > $c/flush_current_buffer_interval
wait_for $c/last_flushed_segment_id $((lf + 1)) 5 "idle RAM buffer flushed"
grep -q "cache 1: idle, flushed the RAM buffer" $log || die "idle flush not logged"
# Periodic superblock commit.
echo 1 > $c/commit_super_block_interval
sleep 3
grep -q "cache 1: committed the superblock record" $log || { cat $log; die "no superblock commit"; }
echo 0 > $c/commit_super_block_interval
echo 0 > $c/flush_current_buffer_interval

# Devices and caches come and go under the running daemon.
run writeboost-detach 1
run writeboost-remove 1
run writeboost-free-cache 1
sleep 2
run writeboost-resume-cache 1 $WB_CACHE
wait_for $c/allow_migrate 1 5 "a cache resumed while the daemon runs (no devices)"
run writeboost-daemon status

run writeboost-daemon stop
must_fail writeboost-daemon status
[ -e /run/writeboost/daemon.pid ] && die "pid file left behind"
kill -0 $pid 2>/dev/null && die "daemon process $pid still alive"
grep -q "writeboost-daemon stopped" $log || die "no stop message"

# In the foreground, one iteration (what systemd runs is the same, looping).
echo 0 > $c/allow_migrate
run writeboost-daemon run --once
assert_eq "$(cat $c/allow_migrate)" 1 "run --once"
# Foreground, stopped by SIGTERM.
writeboost-daemon run >/tmp/fg.log 2>&1 &
fg=$!
sleep 1
run writeboost-daemon status
kill -TERM $fg
wait $fg || die "foreground daemon exit status $?"
cat /tmp/fg.log
echo "--- daemon log"
cat $log
run writeboost-free-cache 1
run writeboost-remove --mgr
echo "tools daemon OK"
