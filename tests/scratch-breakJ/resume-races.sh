# breakJ: things an admin does while resume_cache replays a cache holding
# 40 MiB of dirty data (cache device behind dm-delay, so the replay takes
# a few seconds). After each case the data must read back and the module
# must still work.
. /wb/tests/lib.sh
set -e
CSZ=$((64 * 2048))           # cache 1: vdb 0..64M (cdev)
BSZ=$((64 * 2048))           # b1: vda 0..64M, b2: vda 64..128M, b3: 128..192M
run dm_create cdev --table "0 $CSZ linear $WB_CACHE 0"
run dm_create c22 --table "0 $((16 * 2048)) linear $WB_CACHE $CSZ"
run dm_create b1 --table "0 $BSZ linear $WB_BACKING 0"
run dm_create b2 --table "0 $BSZ linear $WB_BACKING $BSZ"
run dm_create b3 --table "0 $BSZ linear $WB_BACKING $((2 * BSZ))"
now() { cut -d' ' -f1 /proc/uptime; }
PAT="--region 0:40M --ops 0 --initial gen:2000000 --seed 21"
cdelay() {
    if [ "$1" = 0 ]; then t="0 $CSZ linear $WB_CACHE 0"; else t="0 $CSZ delay $WB_CACHE 0 $1"; fi
    echo "$t" | dmsetup load cdev && dmsetup suspend cdev && dmsetup resume cdev
}
run mgr_create
run mgr_msg format_cache_device /dev/mapper/cdev
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
run wb_create wb1 1 /dev/mapper/b1 1
run mgr_msg allow_migrate 0
run wbpattern fill /dev/mapper/wb1 --region 0:40M --gen 2000000 --seed 21
run dmsetup remove wb1
run mgr_msg free_cache

# bg_resume: wb1 (unbound) exists, cache slowed, resume in background.
bg_resume() {
    dmsetup info wb1 >/dev/null 2>&1 || run wb_create wb1 1 /dev/mapper/b1 0
    cdelay ${1:-40}
    rm -f /tmp/rr
    dmesg -c >/dev/null
    echo "[$(now)] resume_cache in background"
    ( set +e; mgr_msg switch_to 1; mgr_msg resume_cache /dev/mapper/cdev; echo "$?" > /tmp/rr; echo "[$(now)] resume rc $(cat /tmp/rr)" ) &
    RPID=$!
    usleep 700000
    [ -f /tmp/rr ] && echo "WARNING: resume finished before the action"
    true
}
# finish: wait for the resume, restore the cache device, show the kernel
# log, check data (if cache 1 is live and wb1 exists), back to freed state.
finish() {
    i=0; while [ ! -f /tmp/rr ] && [ $i -lt 600 ]; do usleep 100000; i=$((i+1)); done
    [ -f /tmp/rr ] || { cdelay 0; die "resume_cache did not return in 60 s"; }
    cdelay 0
    dmesg | grep -i "writeboost\|device-mapper" | tail -8
    if [ -d $WB_SYSFS/caches/1 ]; then
        echo "cache 1 live, dirty=$(cache_value 1 nr_dirty_caches)"
        if dmsetup info wb1 >/dev/null 2>&1; then
            wbpattern check /dev/mapper/wb1 $PAT | tail -1
            wbpattern check /dev/mapper/wb1 $PAT >/dev/null || die "data lost ($1)"
            run dmsetup remove wb1
        fi
        dmsetup info writeboost-mgr >/dev/null 2>&1 || run mgr_create
        mgr_msg switch_to 1
        run mgr_msg free_cache
    else
        echo "cache 1 not live after ($1)"
    fi
    echo "=== case $1 done"
}

echo "=== case A: dmsetup remove writeboost-mgr during the resume"
bg_resume
echo "+ dmsetup remove writeboost-mgr"; dmsetup remove writeboost-mgr && echo "mgr REMOVED during resume" || echo "refused: $?"
dmsetup info writeboost-mgr >/dev/null 2>&1 || { echo "manager gone; cache 1 in sysfs: $(ls $WB_SYSFS/caches)"; i=0; while [ ! -f /tmp/rr ] && [ $i -lt 600 ]; do usleep 100000; i=$((i+1)); done; run mgr_create; }
finish A
dmsetup info writeboost-mgr >/dev/null 2>&1 || run mgr_create

echo "=== case B: dmsetup remove --force writeboost-mgr during the resume"
bg_resume
echo "+ dmsetup remove --force writeboost-mgr"; dmsetup remove --force writeboost-mgr && echo "mgr force-REMOVED" || echo "refused: $?"
dmsetup table writeboost-mgr 2>&1 | head -2
finish B
dmsetup info writeboost-mgr >/dev/null 2>&1 || run mgr_create
[ "$(dmsetup table writeboost-mgr | awk '{print $3}')" = writeboost-mgr ] || { dmsetup remove writeboost-mgr; run mgr_create; }

echo "=== case C: kill -9 of the dmsetup running resume_cache"
bg_resume
pid=$(pidof dmsetup || true); echo "dmsetup pid(s): $pid"
[ -n "$pid" ] && kill -9 $pid
finish C
echo "after killed resume: caches=[$(ls $WB_SYSFS/caches)] wb1 cache_id=$(cat $WB_SYSFS/devices/1/cache_id 2>/dev/null) wb1 status: $(dmsetup status wb1)"
grep -i "cdev\|252:0" /proc/*/mountinfo 2>/dev/null | head -2
echo "+ format_cache_device on a scratch linear to see the cache device is released"; dmsetup info -c cdev
echo "+ retry the resume at normal speed"
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
dmesg | tail -3
run wbpattern check /dev/mapper/wb1 $PAT
run dmsetup remove wb1
run mgr_msg free_cache

echo "=== case D: the cache device force-removed (error table) during the resume"
bg_resume
echo "+ dmsetup remove --force cdev"; dmsetup remove --force cdev && echo "cdev removed" || echo "rc $?"
dmsetup table cdev 2>&1
i=0; while [ ! -f /tmp/rr ] && [ $i -lt 600 ]; do usleep 100000; i=$((i+1)); done
[ -f /tmp/rr ] || die "resume_cache hung on the error table"
dmesg | grep -i "writeboost" | tail -6
if dmsetup info cdev >/dev/null 2>&1; then cdelay 0; else run dm_create cdev --table "0 $CSZ linear $WB_CACHE 0"; fi
if [ -d $WB_SYSFS/caches/1 ]; then echo "cache 1 LIVE after a resume that read an error table"; fi
touch /tmp/rr
finish D
# the data must still be there: resume again normally
dmsetup info wb1 >/dev/null 2>&1 || run wb_create wb1 1 /dev/mapper/b1 0
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
run wbpattern check /dev/mapper/wb1 $PAT
run dmsetup remove wb1
run mgr_msg free_cache

echo "=== case E: 2.2 tables during the resume"
bg_resume
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
echo "+ 2.2 over b1 (disk being bound by the resume)"
dmsetup create x22a --table "0 $BSZ writeboost /dev/mapper/b1 /dev/mapper/c22" && { echo "ACCEPTED 2.2 over b1 during resume"; dmsetup mknodes x22a; } || dmesg | tail -1
echo "+ 2.2 with cdev (the cache being resumed) as its cache"
dmsetup create x22b --table "0 $BSZ writeboost /dev/mapper/b2 /dev/mapper/cdev" && echo "ACCEPTED 2.2 with cdev as cache" || dmesg | tail -1
echo "+ 2.2 over b2 with c22 (unrelated): must work now"
dm_create x22c --table "0 $BSZ writeboost /dev/mapper/b2 /dev/mapper/c22" || { dmesg | tail -2; echo "2.2 table on unrelated disks REFUSED during resume"; }
if dmsetup info x22c >/dev/null 2>&1; then
  wbpattern fill /dev/mapper/x22c --region 0:4M --gen 7 --seed 3 >/dev/null
  wbpattern check /dev/mapper/x22c --region 0:4M --ops 0 --initial gen:7 --seed 3 | tail -1
fi
[ -f /tmp/rr ] && echo "(resume had finished by now: $(cat /tmp/rr))"
finish E
for d in x22a x22b x22c; do dmsetup info $d >/dev/null 2>&1 && run dmsetup remove $d; done

echo "=== case F: wb1 removed during the resume, then a 2.2 table over b1 and over cdev"
bg_resume
run dmsetup remove wb1
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
dmsetup create x22a --table "0 $BSZ writeboost /dev/mapper/b1 /dev/mapper/c22" && { echo "ACCEPTED 2.2 over b1 (removed device's disk) during resume"; dmsetup mknodes x22a; } || dmesg | tail -1
i=0; while [ ! -f /tmp/rr ] && [ $i -lt 600 ]; do usleep 100000; i=$((i+1)); done
cdelay 0
dmesg | grep -i writeboost | tail -6
if dmsetup info x22a >/dev/null 2>&1; then
  mkfill N 4194304 /tmp/N
  dd if=/tmp/N of=/dev/mapper/x22a bs=64k oflag=direct conv=fsync 2>/dev/null
  mgr_msg switch_to 1; mgr_msg force_migrate 1
  sleep 8
  dd if=/dev/mapper/x22a of=/tmp/got bs=64k count=64 iflag=direct 2>/dev/null
  cmp -s /tmp/got /tmp/N && echo "x22a data intact" || { sector_summary /tmp/got; echo "FINDING: x22a data overwritten"; }
  dmsetup remove x22a
fi
echo "+ 2013 wb1 again over b1 (gets its data back)"
run wb_create wb1 1 /dev/mapper/b1 0
cat $WB_SYSFS/devices/1/cache_id
wbpattern check /dev/mapper/wb1 $PAT | tail -1
wbpattern check /dev/mapper/wb1 $PAT > /dev/null || die "F: data lost"
touch /tmp/rr
finish F

echo "=== case G: 2013 device over the backing disk of a 2.2 device whose private cache replays (ctor in background)"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
run dm_create w22 --table "0 $BSZ writeboost /dev/mapper/b3 /dev/mapper/c22 2 writeback_threshold 0"
run wbpattern fill /dev/mapper/w22 --region 0:12M --gen 3000000 --seed 31
run dmsetup remove w22
echo "0 $((16 * 2048)) delay $WB_CACHE $CSZ 60" | dmsetup load c22; dmsetup suspend c22; dmsetup resume c22
dmesg -c > /dev/null
( set +e; dmsetup create w22 --table "0 $BSZ writeboost /dev/mapper/b3 /dev/mapper/c22"; echo "[$(now)] w22 create rc $?" ; touch /tmp/w22done) &
usleep 400000
[ -f /tmp/w22done ] && echo "WARNING: 2.2 replay already done"
echo "+ dmsetup remove w22 during its constructor"; dmsetup remove w22 && echo "removed?!" || echo "rc $?"
echo "+ second 2.2 over the same cache"; dmsetup create w22x --table "0 $BSZ writeboost /dev/mapper/b2 /dev/mapper/c22" && echo "ACCEPTED second 2.2 on c22" || dmesg | tail -1
echo "+ 2013 device over b3"; dmsetup create wb3 --table "0 $BSZ writeboost 3 /dev/mapper/b3 0" && echo "ACCEPTED 2013 over b3" || dmesg | tail -1
echo "+ format_cache_device c22"; mgr_msg format_cache_device /dev/mapper/c22 && echo "FORMATTED c22 during 2.2 replay" || dmesg | tail -1
echo "+ resume_cache c22 as cache 5"; mgr_msg switch_to 5; mgr_msg resume_cache /dev/mapper/c22 && echo "RESUMED c22 as cache 5" || dmesg | tail -1
mgr_msg switch_to 1
i=0; while [ ! -f /tmp/w22done ] && [ $i -lt 600 ]; do usleep 100000; i=$((i+1)); done
echo "0 $((16 * 2048)) linear $WB_CACHE $CSZ" | dmsetup load c22; dmsetup suspend c22; dmsetup resume c22
dmesg | grep -i writeboost | tail -6
dmsetup mknodes
for d in w22x wb3; do dmsetup info $d >/dev/null 2>&1 && dmsetup remove $d; done
if dmsetup info w22 >/dev/null 2>&1; then
  wbpattern check /dev/mapper/w22 --region 0:12M --ops 0 --initial gen:3000000 --seed 31 | tail -1
  wbpattern check /dev/mapper/w22 --region 0:12M --ops 0 --initial gen:3000000 --seed 31 >/dev/null || die "G: 2.2 data lost"
  run dmsetup message w22 0 drop_caches
  run dmsetup remove w22
fi
echo "=== all cases run"
wb_teardown_all
