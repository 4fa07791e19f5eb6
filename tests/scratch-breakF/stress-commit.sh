# breakF: record commits from everywhere at once on one cache: 2 sysfs
# loops, 1 manager-message loop, the daemon (commit every 1 s, idle
# flush 1 s), migration's own record updates (force_migrate), writers on
# 4 devices (ids 1 2 126 127), suspend/resume of the devices, a free_cache
# attempt loop (EBUSY) and status readers. Then the data, a clean
# shutdown, writeboost-check on the cache device, resume and data again.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
SZ=$((32 * 2048))
IDS="1 2 126 127"
i=0
for id in $IDS; do run dm_create back$id --table "0 $SZ linear $WB_BACKING $((i * SZ))"; i=$((i + 1)); done
run cache_setup
for id in $IDS; do run wb_create wb$id $id /dev/mapper/back$id 1; done
run mgr_msg force_migrate 1
run mgr_msg nr_max_batched_migration 1
echo 1 > $WB_SYSFS/caches/1/commit_super_block_interval
echo 1 > $WB_SYSFS/caches/1/flush_current_buffer_interval
run writeboost-daemon start
PIDS=""
for k in 1 2; do ( while :; do echo 1 > $WB_SYSFS/caches/1/commit_super_block; done ) >/dev/null 2>&1 & PIDS="$PIDS $!"; done
( while :; do dmsetup message writeboost-mgr 0 commit_super_block; dmsetup message writeboost-mgr 0 free_cache; dmsetup status writeboost-mgr; done ) >/dev/null 2>&1 & PIDS="$PIDS $!"
( while :; do for id in 1 127; do dmsetup suspend wb$id; sleep 0.2; dmsetup resume wb$id; done; sleep 0.5; done ) >/dev/null 2>&1 & SR=$!
for id in $IDS; do
    wbpattern write /dev/mapper/wb$id --region 0:12M --ops 1500 --sizes 512,4K,64K,256K --seed $id --fsync-every 25 > /tmp/w$id 2>&1 &
done
k=0
while [ $(cat /tmp/w* | grep -c '^done') -lt 4 ]; do
    k=$((k + 1)); [ $k -lt 400 ] || { bad "writers do not finish"; echo w > /proc/sysrq-trigger; break; }
    sleep 1
done
echo "writers finished after ${k}s"
kill $SR; wait $SR 2>/dev/null
for id in $IDS; do dmsetup resume wb$id 2>/dev/null; done
for p in $PIDS; do kill $p; done
for p in $PIDS; do wait $p 2>/dev/null; done
run writeboost-daemon stop
for id in $IDS; do
    wbpattern check /dev/mapper/wb$id --region 0:12M --ops 1500 --sizes 512,4K,64K,256K --seed $id >/tmp/c 2>&1 || { tail -3 /tmp/c; bad "data of $id"; }
done
dmsetup status writeboost-mgr | grep -E "nr_dirty|error|record_migrated|writeback_rounds"
for id in $IDS; do run dmsetup remove wb$id; done
run mgr_msg free_cache
writeboost-check $WB_CACHE > /tmp/chk 2>&1 || { tail -5 /tmp/chk; bad "writeboost-check"; }
tail -3 /tmp/chk
for id in $IDS; do run wb_create wb$id $id /dev/mapper/back$id 0; done
run mgr_msg resume_cache $WB_CACHE
for id in $IDS; do
    wbpattern check /dev/mapper/wb$id --region 0:12M --ops 1500 --sizes 512,4K,64K,256K --seed $id >/tmp/c 2>&1 || { tail -3 /tmp/c; bad "data of $id after free/resume"; }
done
wb_teardown_all || bad teardown
[ $F = 0 ] || die "$F findings"
echo "stress-commit OK"
