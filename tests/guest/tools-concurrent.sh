# Concurrent tool runs serialise on the manager's cache pointer: two caches
# are freed and resumed over and over in parallel while status reads every
# cache and the daemon polls them every 10 ms; without the lock a
# free_cache or resume_cache would act on the other loop's switch_to (and
# sysfs reads race with free_cache removing the cache's directory). Every
# command must succeed and each cache must end up on its own device.
. /wb/tests/lib.sh
set -e
half=$(( $(sectors_of $WB_CACHE) / 2 ))
run dm_create c1 --table "0 $half linear $WB_CACHE 0"
run dm_create c2 --table "0 $half linear $WB_CACHE $half"
run writeboost-create --mgr
run writeboost-format-cache --force /dev/mapper/c1
run writeboost-format-cache --force /dev/mapper/c2
run writeboost-resume-cache 1 /dev/mapper/c1
run writeboost-resume-cache 2 /dev/mapper/c2

cycle() {
    # cycle <cache id> <device>
    _n=0
    while [ $_n -lt 6 ]; do
        writeboost-free-cache -q $1 >/dev/null || { echo "FAILED free $1" >> /tmp/errors; return 1; }
        writeboost-resume-cache -q $1 $2 >/dev/null || { echo "FAILED resume $1" >> /tmp/errors; return 1; }
        _n=$((_n + 1))
    done
}
watch() {
    _n=0
    while [ $_n -lt 10 ]; do
        writeboost-status --json >/dev/null || { echo "FAILED status" >> /tmp/errors; return 1; }
        _n=$((_n + 1))
    done
}
rm -f /tmp/errors
writeboost-daemon run --tick-ms 10 > /tmp/daemon.log 2>&1 &
dpid=$!
trap 'kill -TERM $dpid 2>/dev/null || true' EXIT
cycle 1 /dev/mapper/c1 & p1=$!
cycle 2 /dev/mapper/c2 & p2=$!
watch & p3=$!
wait $p1 || true; wait $p2 || true; wait $p3 || true
kill -TERM $dpid
wait $dpid || die "the daemon failed: $(cat /tmp/daemon.log)"
[ -e /tmp/errors ] && { cat /tmp/errors; die "a concurrent command failed"; }
dev_of() { cat $WB_SYSFS/caches/$1/device/dev; }
devno() { dmsetup info -c --noheadings -o major,minor --separator : $1 | tr -d ' '; }
assert_eq "$(dev_of 1)" "$(devno c1)" "cache 1 device"
assert_eq "$(dev_of 2)" "$(devno c2)" "cache 2 device"
run writeboost-free-cache 1
run writeboost-free-cache 2
run writeboost-remove --mgr
run dmsetup remove c1
run dmsetup remove c2
echo "tools concurrent OK"
