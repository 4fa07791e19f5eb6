# breakJ: SIGKILL (what systemd sends when a unit's stop/start times out)
# of the dmsetup whose ioctl replays a log: 2013 resume_cache (case C of
# resume-races.sh) and the 2.2 constructor here. Expected: either the replay
# completes, or it fails cleanly with a clear error; a retry works; data kept.
. /wb/tests/lib.sh
set -e
CSZ=$((16 * 2048)); BSZ=$((64 * 2048))
run dm_create c22 --table "0 $CSZ linear $WB_CACHE 0"
run dm_create b3 --table "0 $BSZ linear $WB_BACKING 0"
T="0 $BSZ writeboost /dev/mapper/b3 /dev/mapper/c22"
CHK="--region 0:12M --ops 0 --initial gen:3000000 --seed 31"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct
run dm_create w22 --table "$T 2 writeback_threshold 0"
run wbpattern fill /dev/mapper/w22 --region 0:12M --gen 3000000 --seed 31
run dmsetup remove w22
echo "0 $CSZ delay $WB_CACHE 0 60" | dmsetup load c22; dmsetup suspend c22; dmsetup resume c22
dmesg -c >/dev/null
( set +e; dmsetup create w22 --table "$T"; echo "create rc $?"; touch /tmp/done ) &
usleep 400000
pid=$(pidof dmsetup); echo "killing dmsetup $pid"; kill -9 $pid
i=0; while [ ! -f /tmp/done ] && [ $i -lt 300 ]; do usleep 100000; i=$((i+1)); done
[ -f /tmp/done ] || die "create hung"
sleep 2
echo "0 $CSZ linear $WB_CACHE 0" | dmsetup load c22; dmsetup suspend c22; dmsetup resume c22
dmesg | grep -i "writeboost\|device-mapper" | tail -6
dmsetup info -c
dmsetup table w22 2>&1 || true
echo "+ w22 after the kill:"; dmsetup status w22 2>&1 || true
if dmsetup info w22 >/dev/null 2>&1 && [ -n "$(dmsetup table w22)" ]; then
    echo "w22 has a live table"
else
    dmsetup info w22 >/dev/null 2>&1 && run dmsetup remove w22
    run dm_create w22 --table "$T"
fi
dmesg | tail -2
dmsetup mknodes
run wbpattern check /dev/mapper/w22 $CHK
run dmsetup message w22 0 drop_caches
run dmsetup remove w22
echo "kill-during-replay done"
