# variant: only 8 MiB (a quarter of the 31-segment cache) paused; PAUSED_MB overrides
PAUSED_MB=8
# breakK: a paused id's data fills most of a small cache's log; another id
# writes far more than the cache holds. Writers must not hang (parked
# lines must be relocated); the paused data must survive and be written
# back after the other table goes.
. /wb/tests/lib.sh
set -e
since() { dmesg | tail -n +$((mark + 1)); }
ndirty() { mgr_msg switch_to 1; mgr_status_value nr_dirty_caches; }
CSZ=$((32 * 2048))
run dm_create cdev --table "0 $CSZ linear $WB_CACHE 0"
run mgr_create
run mgr_msg format_cache_device /dev/mapper/cdev
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
echo "nr_segments: $(mgr_status_value nr_segments)"
sz=$((64 * 2048))
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run wb_create wb7 7 /dev/mapper/b7 1
run wb_create wb9 9 /dev/mapper/b9 1
run wbpattern fill /dev/mapper/wb7 --region 0:${PAUSED_MB:-8}M --gen 1000 --seed 7
run dm_create o7 --table "0 $sz linear /dev/mapper/b7 0"
mark=$(dmesg | wc -l)
run dmsetup remove wb7
since | grep "cannot claim" || die "not paused"
echo "dirty: $(ndirty)"; dmsetup status writeboost-mgr | grep -i "reloc\|error"
run mgr_msg allow_migrate 1
t0=$(date +%s)
rc=0
timeout 180 wbpattern fill /dev/mapper/wb9 --region 0:48M --gen 1000 --seed 9 || rc=$?
echo "fill of wb9 rc=$rc after $(( $(date +%s) - t0 )) s; dirty $(ndirty)"
dmsetup status writeboost-mgr | grep -i "reloc\|error\|last_"; [ $rc = 0 ] || { since | tail -20; die "writer of id 9 failed or hung (rc $rc)"; }
t0=$(date +%s)
rc=0
timeout 180 wbpattern write /dev/mapper/wb9 --region 0:48M --ops 3000 --sizes 4K,64K --seed 9 --gen-base 2000 || rc=$?
echo "random write of wb9 rc=$rc after $(( $(date +%s) - t0 )) s; dirty $(ndirty)"
[ $rc = 0 ] || { since | tail -20; die "random writer of id 9 failed or hung (rc $rc)"; }
since | grep -v "write-back paused" | tail -8
run wbpattern check /dev/mapper/wb9 --region 0:48M --ops 3000 --sizes 4K,64K --seed 9 --gen-base 2000 --initial gen:1000
dd if=/dev/mapper/o7 bs=1M count=${PAUSED_MB:-8} iflag=direct 2>/dev/null | cmp -s - /dev/zero -n $((PAUSED_MB << 20)) 2>/dev/null && echo "o7 still zeros" || echo "o7 not zeros (check what)"
wait_clean 9 120
run dmsetup remove wb9
echo "dirty after id 9 clean: $(ndirty)"
run dmsetup remove o7
i=0
until [ "$(ndirty)" = 0 ]; do
  i=$((i + 1)); [ $i -lt 120 ] || die "id 7 never written back: $(ndirty)"; sleep 1
done
run wbpattern check /dev/mapper/b7 --region 0:${PAUSED_MB:-8}M --ops 0 --initial gen:1000 --seed 7
since | grep -E "claim|relocat" | tail -5
echo "logfull done"
