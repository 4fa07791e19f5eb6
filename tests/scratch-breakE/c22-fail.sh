# breakE: 2.2-form private cache: the cache device fails (flakey
# error_writes) under several large-write fio jobs; nothing hangs; remove
# --force/remove completes; a new private cache over it, removed right
# after large writes; module unload.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
bounded() {
    _s=$1; _w=$2; shift 2
    "$@" & _p=$!
    _i=0
    while kill -0 $_p 2>/dev/null; do
        _i=$((_i+1))
        if [ $_i -gt $((_s * 5)) ]; then
            bad "HANG: $_w (> ${_s}s): $*"
            echo w > /proc/sysrq-trigger; dmesg | tail -80
            return 99
        fi
        sleep 0.2
    done
    wait $_p
}
csize=$((32 * 2048))
run dm_create fcache --table "0 $csize linear $WB_CACHE 0"
run dm_create b1 --table "0 $((128 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/fcache bs=512 count=1 oflag=direct
run dm_create w22 --table "0 $((128 * 2048)) writeboost /dev/mapper/b1 /dev/mapper/fcache 2 writeback_threshold 0"
for n in 1 2 3; do
  ( fio --name=j$n --filename=/dev/mapper/w22 --rw=randrw --bssplit=4k/20:128k/40:1m/40 --offset=$(( (n-1) * 40 ))M --size=40M --direct=1 --ioengine=libaio --iodepth=16 --runtime=15 --time_based --output=/dev/null > /tmp/j$n 2>&1; echo "rc $?" >> /tmp/j$n ) &
done
sleep 4
echo "0 $csize flakey $WB_CACHE 0 0 30 1 error_writes" | dmsetup load fcache
bounded 60 "suspend fcache" dmsetup suspend --noflush fcache
run dmsetup resume fcache
k=0; while [ $(cat /tmp/j1 /tmp/j2 /tmp/j3 | grep -c '^rc ') -lt 3 ]; do k=$((k+1)); [ $k -lt 120 ] || { bad "HANG: fio"; echo w > /proc/sysrq-trigger; dmesg | tail -60; break; }; sleep 1; done
grep -h '^rc' /tmp/j1 /tmp/j2 /tmp/j3
dmesg | grep writeboost | tail -5
bounded 60 "status w22" dmsetup status w22
bounded 60 "suspend w22" dmsetup suspend w22; echo "suspend rc $?"
bounded 60 "resume w22" dmsetup resume w22
bounded 120 "remove w22 (failed cache)" dmsetup remove w22 || bad "remove w22 after cache failure"
echo "0 $csize linear $WB_CACHE 0" | dmsetup load fcache
run dmsetup suspend --noflush fcache
run dmsetup resume fcache
run dd if=/dev/zero of=/dev/mapper/fcache bs=512 count=1 oflag=direct
run dm_create w22 --table "0 $((128 * 2048)) writeboost /dev/mapper/b1 /dev/mapper/fcache 2 writeback_threshold 0"
( fio --name=k --filename=/dev/mapper/w22 --rw=randwrite --bs=1m --size=100M --direct=1 --ioengine=libaio --iodepth=32 --runtime=6 --time_based --output=/dev/null; echo "rc $?" > /tmp/k ) &
sleep 2
bounded 60 "remove --force w22" dmsetup remove --force w22; echo "remove --force rc $?"
k=0; while [ ! -s /tmp/k ]; do k=$((k+1)); [ $k -lt 60 ] || { bad "HANG: fio after remove --force"; break; }; sleep 1; done
cat /tmp/k
k=0; while dmsetup info w22 >/dev/null 2>&1; do k=$((k+1)); [ $k -lt 30 ] || { bad "w22 still there"; dmsetup info w22; dmsetup table w22; break; }; dmsetup remove w22 2>/dev/null; sleep 1; done
wb_teardown_all || bad "teardown"
bounded 60 "rmmod" rmmod dm_writeboost || bad "rmmod"
dmesg | grep -iE "warn|bug|hung|blocked|oops" | tail -5
[ $F = 0 ] || die "$F findings"
echo "c22-fail OK"
