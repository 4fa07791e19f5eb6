# breakK: resume_cache / 2.2 table load killed at many points (very early,
# mid, near the end, after the replay), SIGKILL and SIGINT, repeated kills,
# while another cache's device is busy; then a normal resume and a data check.
. /wb/tests/lib.sh
set -e
CSZ=$((40 * 2048))
BSZ=$((32 * 2048))
run dm_create cdev --table "0 $CSZ linear $WB_CACHE 0"
run dm_create c22 --table "0 $CSZ linear $WB_CACHE $CSZ"
run dm_create cdev2 --table "0 $CSZ linear $WB_CACHE $((2 * CSZ))"
run dm_create b1 --table "0 $BSZ linear $WB_BACKING 0"
run dm_create b2 --table "0 $BSZ linear $WB_BACKING $BSZ"
run dm_create b3 --table "0 $BSZ linear $WB_BACKING $((2 * BSZ))"
PAT="--region 0:24M --ops 0 --initial gen:4000000 --seed 41"
ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }
slow() {
    if [ "$3" = 0 ]; then t="0 $CSZ linear $WB_CACHE $2"; else t="0 $CSZ delay $WB_CACHE $2 $3"; fi
    echo "$t" | dmsetup load $1 && dmsetup suspend $1 && dmsetup resume $1
}
# trial <sig> <delay_us> <cmd...>: run cmd in bg, send sig to dmsetup after delay; print outcome
trial() {
    sig=$1; d=$2; shift 2
    rm -f /tmp/done /tmp/rc
    mark=$(dmesg | wc -l)
    t0=$(ms)
    ( set +e; "$@" 2>/tmp/terr; echo $? > /tmp/rc; touch /tmp/done ) &
    bg=$!
    usleep $d
    pid=$(pidof dmsetup) && kill -$sig $pid 2>/dev/null && killed=1 || killed=0
    i=0
    while [ ! -f /tmp/done ]; do
        i=$((i + 1)); [ $i -lt 100 ] || { dmesg | tail -20; die "command still running 10 s after kill -$sig at ${d}us"; }
        usleep 100000
    done
    wait $bg 2>/dev/null || true
    t1=$(ms)
    log=$(dmesg | tail -n +$((mark + 1)) | grep -v "device-mapper: ioctl: error\|delay" )
    echo "TRIAL sig=$sig delay=${d}us killed=$killed rc=$(cat /tmp/rc) took=$((t1 - t0))ms"
    echo "$log" | grep -E "interrupted|resume read|error|WARN|refus|busy" | sed 's/^/   | /' | tail -4
}
# Cache 2 with device 3 kept busy in the background.
run mgr_create
run mgr_msg format_cache_device /dev/mapper/cdev2
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/cdev2
run wb_create wb3 3 /dev/mapper/b3 2
run mgr_msg format_cache_device /dev/mapper/cdev
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
run wb_create wb1 1 /dev/mapper/b1 1
run wbpattern fill /dev/mapper/wb1 --region 0:24M --gen 4000000 --seed 41
run dmsetup remove wb1
run mgr_msg switch_to 1
run mgr_msg free_cache
run wb_create wb1 1 /dev/mapper/b1 0
# measure a full slow resume
run slow cdev 0 60
mark=$(dmesg | wc -l); t0=$(ms)
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
T=$(( $(ms) - t0 ))
echo "full slow resume took ${T} ms; $(dmesg | tail -n +$((mark + 1)) | grep 'resume read')"
run wbpattern check /dev/mapper/wb1 $PAT
run dmsetup remove wb1
run mgr_msg switch_to 1
run mgr_msg free_cache
run wb_create wb1 1 /dev/mapper/b1 0

( wbpattern write /dev/mapper/wb3 --region 0:24M --ops 4000 --seed 3 > /tmp/bg.out 2>&1; echo $? > /tmp/bg.rc ) &
bgw=$!
n=0
for spec in KILL:20000 KILL:100000 INT:300000 KILL:$((T * 500)) INT:$((T * 800)) KILL:$((T * 950)) KILL:$((T * 1000)) KILL:$((T * 1000 + 30000)) KILL:$((T * 1000 + 150000)) INT:$((T * 1000 + 60000)); do
    n=$((n + 1))
    mgr_msg switch_to 1
    trial ${spec%%:*} ${spec#*:} mgr_msg resume_cache /dev/mapper/cdev
    if [ -d $WB_SYSFS/caches/1 ]; then
        echo "   cache 1 LIVE after trial $n; wb1: $(dmsetup status wb1)"
        wbpattern check /dev/mapper/wb1 $PAT >/dev/null || die "data wrong after a resume that survived the kill (trial $n)"
        dmsetup remove wb1 && mgr_msg switch_to 1 && mgr_msg free_cache && wb_create wb1 1 /dev/mapper/b1 0 || die "teardown after trial $n"
    else
        echo "   cache 1 not live; wb1: $(dmsetup status wb1)"
    fi
done
wait $bgw || true
echo "bg writer rc=$(cat /tmp/bg.rc)"
run wbpattern check /dev/mapper/wb3 --region 0:24M --ops 4000 --seed 3
run slow cdev 0 0
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
run wbpattern check /dev/mapper/wb1 $PAT
run dmsetup remove wb1
run mgr_msg switch_to 1
run mgr_msg free_cache

echo "== 2.2 form"
T22="0 $BSZ writeboost /dev/mapper/b2 /dev/mapper/c22"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
run dm_create w22 --table "$T22 2 writeback_threshold 0"
run wbpattern fill /dev/mapper/w22 --region 0:24M --gen 4000000 --seed 41
run dmsetup remove w22
run slow c22 $CSZ 60
for spec in KILL:30000 INT:200000 KILL:$((T * 900)) KILL:$((T * 1000 + 50000)) KILL:$((T * 1000 + 200000)); do
    trial ${spec%%:*} ${spec#*:} dmsetup create w22 --table "$T22"
    if [ -n "$(dmsetup table w22 2>/dev/null)" ]; then
        echo "   w22 LIVE: $(dmsetup status w22)"
        dmsetup mknodes w22
        wbpattern check /dev/mapper/w22 $PAT >/dev/null || die "w22 data wrong after surviving load"
        run dmsetup remove w22
    else
        dmsetup info w22 >/dev/null 2>&1 && { echo "   w22 left without table, removing"; dmsetup remove w22; }
        echo "   w22 not live"
    fi
done
run slow c22 $CSZ 0
run dm_create w22 --table "$T22"
run wbpattern check /dev/mapper/w22 $PAT
run dmsetup remove w22
echo "killed-points done"
