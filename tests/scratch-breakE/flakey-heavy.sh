# breakE: the cache device starts failing writes (dm-flakey error_writes,
# then dm-error) while several fio jobs do large and small writes and
# reads: nothing hangs, writes end (EIO allowed after the failure), what
# was acknowledged before reads back right or EIO, never wrong; teardown
# and module unload work.
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
run wb_create wb1 1 $WB_BACKING 1 $((256 * 2048))
run mgr_msg allow_migrate 1
# known data, acknowledged and flushed before the failure
dd if=/dev/urandom of=/tmp/r16 bs=1M count=16 2>/dev/null
run dd if=/tmp/r16 of=/dev/mapper/wb1 bs=1M seek=200 oflag=direct conv=fsync
run dd if=/tmp/r16 of=/dev/mapper/wb1 bs=4k seek=$((220 * 256)) oflag=direct conv=fsync
for n in 1 2 3 4; do
  ( fio --name=j$n --filename=/dev/mapper/wb1 --rw=randrw --bssplit=4k/30:64k/20:256k/25:1m/25 --offset=$(( (n-1) * 40 ))M --size=40M --direct=1 --ioengine=libaio --iodepth=16 --runtime=25 --time_based --output=/dev/null > /tmp/j$n 2>&1; echo "rc $?" >> /tmp/j$n ) &
done
sleep 5
echo "0 $csize flakey $WB_CACHE 0 0 30 1 error_writes" | dmsetup load fcache
bounded 60 "suspend fcache" dmsetup suspend --noflush fcache
run dmsetup resume fcache
sleep 3
echo "0 $csize error" | dmsetup load fcache
bounded 60 "suspend fcache (2)" dmsetup suspend --noflush fcache
run dmsetup resume fcache
j=0
while [ $(cat /tmp/j1 /tmp/j2 /tmp/j3 /tmp/j4 2>/dev/null | grep -c '^rc ') -lt 4 ]; do
    j=$((j+1)); [ $j -lt 180 ] || { bad "HANG: fio jobs did not end"; echo w > /proc/sysrq-trigger; dmesg | tail -80; break; }
    sleep 1
done
grep -h '^rc\|err=' /tmp/j1 /tmp/j2 /tmp/j3 /tmp/j4 | head
dmesg | grep writeboost | tail -8
# more large writes into the failed cache: must end (EIO), not hang
bounded 60 "dd into failed cache" dd if=/tmp/r16 of=/dev/mapper/wb1 bs=1M seek=180 count=4 oflag=direct 2>&1 | tail -1
# acknowledged+flushed data: right or EIO, never wrong
for spec in "1M 200 16" "4k $((220*256)) 4096"; do
    set -- $spec
    dd if=/dev/mapper/wb1 of=/tmp/c16 bs=$1 skip=$2 count=$3 iflag=direct 2>/dev/null; rc=$?
    if [ $rc = 0 ]; then cmp /tmp/r16 /tmp/c16 || bad "wrong data at $spec after cache failure"; else echo "read $spec: EIO (rc $rc)"; fi
done
dd if=$WB_BACKING of=/tmp/c16 bs=1M skip=200 count=16 iflag=direct 2>/dev/null
cmp /tmp/r16 /tmp/c16 || echo "note: 200M..216M not on backing (yet)"
bounded 60 "suspend wb1" dmsetup suspend wb1; echo "suspend wb1 rc $?"
bounded 60 "resume wb1" dmsetup resume wb1
bounded 120 "remove wb1" dmsetup remove wb1 || bad "remove wb1 after cache failure"
run mgr_msg switch_to 1
bounded 120 "free_cache" mgr_msg free_cache; echo "free_cache rc $?"
dd if=$WB_BACKING of=/tmp/c16 bs=1M skip=200 count=16 iflag=direct 2>/dev/null
cmp /tmp/r16 /tmp/c16 || echo "note: flushed 1M data at 200M not on backing after free_cache (allowed: dead cache device)"
dd if=$WB_BACKING of=/tmp/c16 bs=4k skip=$((220*256)) count=4096 iflag=direct 2>/dev/null
cmp /tmp/r16 /tmp/c16 || echo "note: flushed 4k data at 220M not on backing after free_cache (allowed)"
wb_teardown_all || bad "teardown"
bounded 60 "modprobe -r" modprobe -r dm_writeboost || { rmmod dm_writeboost || bad "module unload"; }
lsmod | grep writeboost && bad "module still loaded"
[ $F = 0 ] || die "$F findings"
echo "flakey-heavy OK"
