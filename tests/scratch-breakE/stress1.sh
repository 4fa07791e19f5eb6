# breakE: deferred completion of direct writes. Shared cache, two devices,
# fio jobs of large+small writes with verify and readers; suspend/resume
# of the devices and of the cache device (dm-linear) while they run;
# remove + free_cache right after large writes; 2.2-form private cache
# removed during large writes; module unload.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
# bounded <secs> <what> cmd...: run, report a hang if it takes longer.
bounded() {
    _s=$1; _w=$2; shift 2
    "$@" & _p=$!
    _i=0
    while kill -0 $_p 2>/dev/null; do
        _i=$((_i+1))
        if [ $_i -gt $((_s * 5)) ]; then
            bad "HANG: $_w (> ${_s}s): $*"
            cat /proc/$_p/stack 2>/dev/null
            echo w > /proc/sysrq-trigger; dmesg | tail -60
            return 99
        fi
        sleep 0.2
    done
    wait $_p
}
csize=$((64 * 2048))
run mgr_create
run dm_create fcache --table "0 $csize linear $WB_CACHE 0"
run mgr_msg format_cache_device /dev/mapper/fcache
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run dm_create b1 --table "0 $((128 * 2048)) linear $WB_BACKING 0"
run dm_create b2 --table "0 $((128 * 2048)) linear $WB_BACKING $((128 * 2048))"
run wb_create wb1 1 /dev/mapper/b1 1
run wb_create wb2 2 /dev/mapper/b2 1
run mgr_msg allow_migrate 1
echo "== A: fio mix + suspend/resume of wb1, wb2, fcache"
FIO="--direct=1 --ioengine=libaio --iodepth=8 --verify=crc32c --verify_fatal=1 --output-format=terse"
( fio --name=big1 --filename=/dev/mapper/wb1 --rw=randwrite --bsrange=64k-1m --offset=0 --size=40M --iodepth=16 $FIO --loops=2 > /tmp/f1 2>&1; echo "rc $?" >> /tmp/f1 ) &
( fio --name=mix1 --filename=/dev/mapper/wb1 --rw=randrw --bssplit=4k/50:64k/25:128k/15:1m/10 --offset=40M --size=40M $FIO --loops=2 > /tmp/f2 2>&1; echo "rc $?" >> /tmp/f2 ) &
( fio --name=big2 --filename=/dev/mapper/wb2 --rw=write --bs=256k --offset=0 --size=60M $FIO --loops=2 > /tmp/f3 2>&1; echo "rc $?" >> /tmp/f3 ) &
( fio --name=rd --filename=/dev/mapper/wb1 --rw=randread --bs=4k --offset=0 --size=80M --direct=1 --ioengine=libaio --iodepth=8 --runtime=40 --time_based --output=/dev/null > /tmp/f4 2>&1; echo "rc $?" >> /tmp/f4 ) &
i=0
while [ $i -lt 25 ]; do
    bounded 60 "suspend wb1 $i" dmsetup suspend wb1 || bad "suspend wb1 $i"
    sleep 0.1
    dmsetup resume wb1 || bad "resume wb1 $i"
    bounded 60 "suspend --noflush wb2 $i" dmsetup suspend --noflush wb2 || bad "suspend wb2 $i"
    dmsetup resume wb2 || bad "resume wb2 $i"
    if [ $((i % 4)) = 0 ]; then
        bounded 60 "suspend fcache $i" dmsetup suspend fcache || bad "suspend fcache $i"
        sleep 0.3
        dmsetup resume fcache || bad "resume fcache $i"
    fi
    if [ $((i % 5)) = 2 ]; then
        bounded 60 "reload wb1 $i" wb_set_cache wb1 1 || bad "reload wb1 $i"
    fi
    i=$((i+1)); sleep 0.3
done
j=0
while [ $(cat /tmp/f1 /tmp/f2 /tmp/f3 /tmp/f4 2>/dev/null | grep -c '^rc ') -lt 4 ]; do
    j=$((j+1)); [ $j -lt 300 ] || { bad "HANG: fio jobs did not end"; echo w > /proc/sysrq-trigger; break; }
    sleep 1
done
for f in /tmp/f1 /tmp/f2 /tmp/f3 /tmp/f4; do
    grep -q '^rc 0' $f || { bad "fio $f failed"; tail -5 $f; }
done
dmesg | grep -iE "verify|writeboost.*(err|fail)" | tail -5
echo "== B: remove + free_cache right after large writes"
dd if=/dev/urandom of=/tmp/r8 bs=1M count=8 2>/dev/null
bounded 60 "dd wb2" dd if=/tmp/r8 of=/dev/mapper/wb2 bs=1M seek=70 oflag=direct 2>/dev/null
bounded 60 "remove wb2" dmsetup remove wb2 || bad "remove wb2"
( for k in 1 2 3 4 5; do dd if=/tmp/r8 of=/dev/mapper/wb1 bs=1M seek=$((80 + k * 8)) oflag=direct 2>/dev/null; done ) &
sleep 0.5
dmsetup remove wb1 2>/dev/null && echo "wb1 removed during writes?!"
wait
bounded 60 "remove wb1" dmsetup remove wb1 || bad "remove wb1"
run mgr_msg switch_to 1
bounded 120 "free_cache" mgr_msg free_cache || bad "free_cache"
# data is on the backing now
dd if=/dev/mapper/b2 of=/tmp/c8 bs=1M skip=70 count=8 iflag=direct 2>/dev/null
cmp /tmp/r8 /tmp/c8 || bad "wb2 large write not on backing after remove+free_cache"
dd if=/dev/mapper/b1 of=/tmp/c8 bs=1M skip=$((80 + 5 * 8)) count=8 iflag=direct 2>/dev/null
cmp /tmp/r8 /tmp/c8 || bad "wb1 large write not on backing after remove+free_cache"
bounded 30 "remove mgr" dmsetup remove writeboost-mgr || bad "remove mgr"
echo "== C: 2.2-form private cache removed during large writes"
run dd if=/dev/zero of=/dev/mapper/fcache bs=512 count=1 oflag=direct
run dm_create w22 --table "0 $((128 * 2048)) writeboost /dev/mapper/b1 /dev/mapper/fcache 2 writeback_threshold 0"
( fio --name=w22 --filename=/dev/mapper/w22 --rw=randwrite --bsrange=64k-1m --size=100M --direct=1 --ioengine=libaio --iodepth=32 --runtime=8 --time_based --output=/dev/null; echo "rc $?" > /tmp/f5 ) &
sleep 3
dmsetup remove --deferred w22 || bad "deferred remove w22"
k=0; while [ ! -s /tmp/f5 ]; do k=$((k+1)); [ $k -lt 60 ] || { bad "HANG: w22 fio"; break; }; sleep 1; done
k=0; while dmsetup info w22 >/dev/null 2>&1; do k=$((k+1)); [ $k -lt 60 ] || { bad "HANG: w22 not removed after deferred remove"; dmsetup info w22; break; }; sleep 1; done
cat /tmp/f5
# once more: private cache, buffered large writes, remove right after close
run dm_create w22 --table "0 $((128 * 2048)) writeboost /dev/mapper/b1 /dev/mapper/fcache 2 writeback_threshold 0"
dd if=/tmp/r8 of=/dev/mapper/w22 bs=1M seek=20 2>/dev/null
bounded 60 "remove w22 (2)" dmsetup remove w22 || bad "remove w22 (2)"
run dm_create w22 --table "0 $((128 * 2048)) writeboost /dev/mapper/b1 /dev/mapper/fcache 2 writeback_threshold 0"
dd if=/dev/mapper/w22 of=/tmp/c8 bs=1M skip=20 count=8 iflag=direct 2>/dev/null
cmp /tmp/r8 /tmp/c8 || bad "w22: buffered large write lost across remove/create"
bounded 60 "remove w22 (3)" dmsetup remove w22 || bad "remove w22 (3)"
echo "== D: module unload"
wb_teardown_all || bad "teardown"
bounded 60 "modprobe -r" modprobe -r dm_writeboost || { rmmod dm_writeboost || bad "module unload"; }
lsmod | grep writeboost && bad "module still loaded"
dmesg | grep -iE "warn|bug|hung|blocked|oops" | tail -5
[ $F = 0 ] || die "$F findings"
echo "stress1 OK"
