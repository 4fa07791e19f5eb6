# breakD: the cache device goes flakey (errors) during large writes with
# fsyncs: writes fail with EIO, nothing hangs; what was fsynced before the
# failure reads back (before and after a re-resume).
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
csize=$((64 * 2048))
run mgr_create
run dm_create fcache --table "0 $csize linear $WB_CACHE 0"
run mgr_msg format_cache_device /dev/mapper/fcache
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run wb_create wb1 1 $WB_BACKING 1 $((256 * 2048))
P="--region 1M:32M --ops 2000 --seed 11 --sizes 4K,64K,1M,130K --align 512"
( wbpattern write /dev/mapper/wb1 $P --fsync-every 5 > /tmp/w.out 2>/tmp/w.err; echo "writer rc $?" >> /tmp/w.out ) &
sleep 4
echo "0 $csize flakey $WB_CACHE 0 0 3 1 error_writes" | dmsetup load fcache
run dmsetup suspend --noflush fcache
run dmsetup resume fcache
i=0
while ! grep -q "writer rc" /tmp/w.out; do i=$((i+1)); [ $i -lt 120 ] || { bad "writer hangs"; break; }; sleep 1; done
tail -2 /tmp/w.out; tail -2 /tmp/w.err
d=$(grep flushed /tmp/w.out | tail -1 | awk '{print $2}')
echo "durable: $d"
dmesg | grep writeboost | tail -6
echo "0 $csize linear $WB_CACHE 0" | dmsetup load fcache
run dmsetup suspend --noflush fcache
run dmsetup resume fcache
wbpattern check /dev/mapper/wb1 $P --durable ${d:-0} --initial zero > /tmp/c.out 2>&1; rc=$?; tail -3 /tmp/c.out; echo "live check rc $rc"; [ $rc != 1 ] || bad "flushed data not read back after cache failure (live)"
dmsetup remove wb1
mgr_msg free_cache
run wb_create wb1 1 $WB_BACKING 0 $((256 * 2048))
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run wb_set_cache wb1 1
wbpattern check /dev/mapper/wb1 $P --durable ${d:-0} --initial zero || bad "flushed data lost after re-resume"
[ $F = 0 ] || die "$F findings"
echo "flakey OK"
