# Ordinary timing (no dead disk): routine admin workflows right after a
# device's data is written back must not be refused or rerouted needlessly.
. /wb/tests/lib.sh
set -e
# breakP helpers
sz=$((64 * 2048))
st() { mgr_msg switch_to 1 >/dev/null 2>&1; echo "[$(date +%s)] tail=$(mgr_status_value last_migrated_segment_id) rec=$(mgr_status_value record_migrated_segment_id) flushed=$(mgr_status_value last_flushed_segment_id) dirty=$(mgr_status_value nr_dirty_caches) reloc=$(mgr_status_value nr_relocated_lines) err=$(mgr_status_value error) d8=$(cat $WB_SYSFS/devices/8/nr_dirty_caches 2>/dev/null) d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches 2>/dev/null) $*"; }
wait_klog() { _i=0; until dmesg | grep -q "$1"; do _i=$((_i+1)); [ $_i -lt ${2:-60} ] || return 1; sleep 1; done; }
# retry_ms <max tries of 0.1 s> cmd...: runs cmd until it succeeds; prints tries
retry_n() { _n=$1; shift; _k=0; until "$@" 2>/tmp/rerr; do _k=$((_k+1)); [ $_k -lt $_n ] || { echo "gave up after $_k tries: $(cat /tmp/rerr)"; return 1; }; sleep 0.1; done; echo "ok after $_k retries (x0.1 s)"; }
wbstat() { dmsetup status "$1" | awk '{for(i=1;i<=NF;i++) if($i=="cache_id") print $(i+1)}'; }
run pair_setup
echo "allow_migrate=$(mgr_status_value allow_migrate)"
run mgr_msg allow_migrate 1
fails=0
for i in 1 2 3 4 5 6; do
    dd if=/dev/urandom of=/dev/mapper/wb9 bs=1M count=3 oflag=direct conv=fsync 2>/dev/null
    wait_clean 9 60
    [ $i -gt 3 ] || sleep 1
    st "iter $i: wb9 clean"
    dmsetup remove wb9
    if dmsetup remove b9 2>/tmp/e; then
        echo "iter $i: remove b9 at once: ok"
    else
        fails=$((fails+1))
        echo "iter $i: remove b9 at once REFUSED: $(cat /tmp/e)"; klog_tail 3
        retry_n 300 dmsetup remove b9
    fi
    dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
    wb_create wb9 9 /dev/mapper/b9 1
done
echo "remove-b9-at-once refusals: $fails of 6"
# Re-create with cache_id 0 right after a clean removal: pass-through expected.
rr=0
for i in 1 2 3 4 5 6; do
    dd if=/dev/urandom of=/dev/mapper/wb9 bs=1M count=3 oflag=direct conv=fsync 2>/dev/null
    wait_clean 9 60
    dmsetup remove wb9
    dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b9 0"
    c=$(wbstat wb9)
    echo "iter $i: wb9 re-created with cache_id 0: bound to cache '$c'"
    [ "$c" = 0 ] || { rr=$((rr+1)); klog_tail 3; }
    dmsetup remove wb9
    wb_create wb9 9 /dev/mapper/b9 1
done
echo "re-created cache_id 0 but routed through cache 1: $rr of 6"
# The 'use the disk uncached' workflow: remove, re-create cache_id 0, free_cache.
dd if=/dev/urandom of=/dev/mapper/wb9 bs=1M count=3 oflag=direct conv=fsync 2>/dev/null
dd if=/dev/urandom of=/dev/mapper/wb8 bs=1M count=3 oflag=direct conv=fsync 2>/dev/null
wait_clean 9 60; wait_clean 8 60
run dmsetup remove wb8
run dmsetup remove wb9
dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b9 0"
echo "wb9 cache_id $(wbstat wb9)"
run mgr_msg switch_to 1
t0=$(date +%s)
if mgr_msg free_cache 2>/tmp/e; then echo "free_cache ok in $(( $(date +%s) - t0 )) s"; else echo "free_cache REFUSED: $(cat /tmp/e)"; klog_tail 4; fi
klog_tail 4
# Dirty removal, ordinary: how long the claim lasts after written back.
run dmsetup remove wb9
ls $WB_SYSFS/caches
if [ -d $WB_SYSFS/caches/1 ]; then
  run mgr_msg allow_migrate 0
  run wb_create wb9 9 /dev/mapper/b9 1
  dd if=/dev/urandom of=/dev/mapper/wb9 bs=1M count=3 oflag=direct conv=fsync 2>/dev/null
  run dmsetup remove wb9
  klog_tail 2
  run mgr_msg allow_migrate 1
  wait_klog "device_id 9 is written back" 30 || echo "no written-back message"
  st "after written back"
  retry_n 100 dmsetup remove b9
  run mgr_msg free_cache
fi
echo DONE
