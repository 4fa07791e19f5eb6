# breakE: the cache device is suspended (its I/O held) while large direct
# writes are in flight: readers of the same lines wait, status and other
# devices' small writes do not hang; suspend of the writeboost device waits
# for the cache device, everything completes once it resumes. Then fio
# write+verify_backlog (reads of just-written large blocks while more
# writes are in flight), and remove during that.
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
dd if=/dev/urandom of=/tmp/r4 bs=1M count=4 2>/dev/null
echo "== stall the cache device under a large write"
run dmsetup suspend fcache
( dd if=/tmp/r4 of=/dev/mapper/wb1 bs=1M seek=10 oflag=direct 2>/dev/null; echo "rc $?" > /tmp/d1 ) &
sleep 1
( dd if=/dev/mapper/wb1 of=/tmp/c4 bs=1M skip=10 count=4 iflag=direct 2>/dev/null; echo "rc $?" > /tmp/d2 ) &
sleep 1
( dmsetup suspend wb1; echo "rc $?" > /tmp/d3 ) &
sleep 1
bounded 10 "manager status during stall" dmsetup status writeboost-mgr > /dev/null || bad "mgr status"
bounded 10 "wb2 status during stall" dmsetup status wb2 > /dev/null || bad "wb2 status"
[ -s /tmp/d1 ] && bad "large write completed while the cache device is suspended: $(cat /tmp/d1)"
[ -s /tmp/d2 ] && echo "note: read completed during stall: $(cat /tmp/d2)"
[ -s /tmp/d3 ] && echo "note: suspend wb1 completed during stall: $(cat /tmp/d3)"
sleep 5
run dmsetup resume fcache
# the suspend of wb1 ends once the in-flight write does (the dd's next
# writes and reads are then held by wb1's suspend until its resume)
k=0; while [ ! -s /tmp/d3 ]; do k=$((k+1)); [ $k -lt 60 ] || { bad "HANG: suspend wb1 after cache device resume"; echo w > /proc/sysrq-trigger; dmesg | tail -60; break; }; sleep 1; done
run dmsetup resume wb1
k=0; while [ ! -s /tmp/d1 ] || [ ! -s /tmp/d2 ]; do k=$((k+1)); [ $k -lt 60 ] || { bad "HANG after cache device resume"; echo w > /proc/sysrq-trigger; dmesg | tail -60; break; }; sleep 1; done
cat /tmp/d1 /tmp/d2 /tmp/d3
cmp /tmp/r4 /tmp/c4 || { dd if=/dev/mapper/wb1 of=/tmp/c4b bs=1M skip=10 count=4 iflag=direct 2>/dev/null; cmp /tmp/r4 /tmp/c4b && echo "note: concurrent read saw old data (allowed: read overlapped the write)" || bad "data wrong after stall"; }
echo "== fio write + verify_backlog, several jobs, large and small"
for n in 1 2 3; do
  ( fio --name=v$n --filename=/dev/mapper/wb$((n % 2 + 1)) --rw=randwrite --bssplit=4k/30:64k/30:1m/40 --offset=$(( n * 30 ))M --size=28M --direct=1 --ioengine=libaio --iodepth=16 --verify=crc32c --verify_backlog=16 --verify_fatal=1 --loops=3 --output=/dev/null > /tmp/v$n 2>&1; echo "rc $?" >> /tmp/v$n ) &
done
i=0
while [ $i -lt 10 ]; do
  bounded 60 "suspend fcache $i" dmsetup suspend fcache; sleep 0.5; dmsetup resume fcache
  bounded 60 "suspend wb2 $i" dmsetup suspend wb2; dmsetup resume wb2
  i=$((i+1)); sleep 0.5
done
k=0; while [ $(cat /tmp/v1 /tmp/v2 /tmp/v3 | grep -c '^rc ') -lt 3 ]; do k=$((k+1)); [ $k -lt 240 ] || { bad "HANG: fio verify jobs"; echo w > /proc/sysrq-trigger; break; }; sleep 1; done
for n in 1 2 3; do grep -q '^rc 0' /tmp/v$n || { bad "fio verify v$n"; tail -5 /tmp/v$n; }; done
echo "== remove all + free_cache right after large writes, then unload"
run dd if=/tmp/r4 of=/dev/mapper/wb2 bs=1M seek=100 oflag=direct
bounded 60 "remove wb2" dmsetup remove wb2 || bad "remove wb2"
bounded 60 "remove wb1" dmsetup remove wb1 || bad "remove wb1"
bounded 120 "free_cache" mgr_msg free_cache || bad "free_cache"
# free_cache keeps the dirty lines on the cache device: resume it again
run wb_create wb1 1 /dev/mapper/b1 0
run wb_create wb2 2 /dev/mapper/b2 0
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run wb_set_cache wb2 1
dd if=/dev/mapper/wb2 of=/tmp/c4 bs=1M skip=100 count=4 iflag=direct 2>/dev/null
cmp /tmp/r4 /tmp/c4 || bad "large write written right before remove+free_cache lost after re-resume"
wb_teardown_all || bad "teardown"
bounded 60 "rmmod" rmmod dm_writeboost || bad "rmmod"
dmesg | grep -iE "warn|bug|hung|blocked|oops" | tail -5
[ $F = 0 ] || die "$F findings"
echo "stall OK"
