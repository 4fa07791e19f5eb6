# breakJ: admin actions while a 2.2 table's constructor replays its private
# cache (12 MiB dirty, cache behind dm-delay 60 ms): other tables over the
# same disks, manager format/resume of the cache device, then dmsetup remove
# of the device being created, and dmsetup remove during drop_caches.
. /wb/tests/lib.sh
set -e
CSZ=$((16 * 2048)); BSZ=$((64 * 2048))
run dm_create c22 --table "0 $CSZ linear $WB_CACHE 0"
run dm_create b3 --table "0 $BSZ linear $WB_BACKING 0"
run dm_create b2 --table "0 $BSZ linear $WB_BACKING $BSZ"
run mgr_create
now() { cut -d' ' -f1 /proc/uptime; }
T="0 $BSZ writeboost /dev/mapper/b3 /dev/mapper/c22"
CHK="--region 0:12M --ops 0 --initial gen:3000000 --seed 31"
cdelay() {
    if [ "$1" = 0 ]; then t="0 $CSZ linear $WB_CACHE 0"; else t="0 $CSZ delay $WB_CACHE 0 $1"; fi
    echo "$t" | dmsetup load c22 && dmsetup suspend c22 && dmsetup resume c22
}
bg_create() {
    cdelay 60
    rm -f /tmp/w22done; dmesg -c >/dev/null
    ( set +e; dmsetup create w22 --table "$T"; echo "[$(now)] w22 create rc $?"; touch /tmp/w22done ) &
    usleep 400000
    [ -f /tmp/w22done ] && echo "WARNING: 2.2 replay already done"
    true
}
wait_create() {
    i=0; while [ ! -f /tmp/w22done ] && [ $i -lt 600 ]; do usleep 100000; i=$((i+1)); done
    [ -f /tmp/w22done ] || { cdelay 0; die "2.2 create hung"; }
    cdelay 0
    dmsetup mknodes
}
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct
run dm_create w22 --table "$T 2 writeback_threshold 0"
run wbpattern fill /dev/mapper/w22 --region 0:12M --gen 3000000 --seed 31
run dmsetup remove w22

echo "=== G1: other users of the disks during the 2.2 constructor"
bg_create
echo "+ second 2.2 over b2 with the same cache"; dmsetup create w22x --table "0 $BSZ writeboost /dev/mapper/b2 /dev/mapper/c22" && echo "ACCEPTED second 2.2 on c22" || dmesg | tail -1
echo "+ 2013 device over b3"; dmsetup create wb3 --table "0 $BSZ writeboost 3 /dev/mapper/b3 0" && echo "ACCEPTED 2013 over b3 during 2.2 ctor" || dmesg | tail -1
echo "+ linear over b3"; dmsetup create l3 --table "0 $BSZ linear /dev/mapper/b3 0" && echo "ACCEPTED linear over b3 during 2.2 ctor" || dmesg | tail -1
echo "+ format_cache_device c22"; mgr_msg format_cache_device /dev/mapper/c22 && echo "FORMATTED c22 during 2.2 replay" || dmesg | tail -1
echo "+ resume_cache c22 as cache 5"; mgr_msg switch_to 5; mgr_msg resume_cache /dev/mapper/c22 && echo "RESUMED c22 as cache 5" || dmesg | tail -1
wait_create
dmesg | grep -i writeboost | tail -5
for d in w22x wb3 l3; do dmsetup info $d >/dev/null 2>&1 && run dmsetup remove $d; done
run wbpattern check /dev/mapper/w22 $CHK
run dmsetup remove w22

echo "=== G2: dmsetup remove of w22 while its constructor replays"
bg_create
echo "+ dmsetup remove w22"; dmsetup remove w22 && echo "remove rc 0" || echo "remove rc $?"
wait_create
dmesg | grep -i "writeboost\|device-mapper" | tail -8
dmsetup info w22 >/dev/null 2>&1 && { echo "w22 exists after all"; run dmsetup remove w22; }
echo "+ create w22 again: the data must be there"
run dm_create w22 --table "$T"
dmesg | tail -3
run wbpattern check /dev/mapper/w22 $CHK

echo "=== G3: dmsetup remove w22 while drop_caches waits on a stalled (suspended) backing disk"
run wbpattern write /dev/mapper/w22 --region 12M:20M --ops 500 --seed 5 --sizes 4K --align 4K --fsync-every 500 | tail -1
echo "dirty before: $(dmsetup status w22 | awk '{print $10}')"
run dmsetup suspend b3
rm -f /tmp/dd /tmp/rm
( set +e; dmsetup message w22 0 drop_caches; echo "[$(now)] drop_caches rc $?"; touch /tmp/dd ) &
usleep 500000
( set +e; echo "[$(now)] + dmsetup remove w22"; dmsetup remove w22; echo "[$(now)] remove rc $?"; touch /tmp/rm ) &
sleep 3
echo "[$(now)] after 3 s: drop done? $([ -f /tmp/dd ] && echo y || echo n), remove done? $([ -f /tmp/rm ] && echo y || echo n); status: $(dmsetup status w22 2>&1 | cut -c1-60)"
run dmsetup resume b3
i=0; while { [ ! -f /tmp/dd ] || [ ! -f /tmp/rm ]; } && [ $i -lt 900 ]; do usleep 100000; i=$((i+1)); done
[ -f /tmp/dd ] && [ -f /tmp/rm ] || die "drop_caches or remove hung"
dmesg | grep -i "writeboost" | tail -5
dmsetup info w22 >/dev/null 2>&1 && run dmsetup remove w22
run dm_create w22 --table "$T"
echo "dirty after re-create: $(dmsetup status w22 | awk '{print $10}')"
run wbpattern check /dev/mapper/w22 $CHK
run wbpattern check /dev/mapper/w22 --region 12M:20M --ops 500 --seed 5 --sizes 4K --align 4K
run dmsetup message w22 0 drop_caches
run dmsetup remove w22
run wbpattern check /dev/mapper/b3 $CHK
echo "c22-ctor-races done"
wb_teardown_all
