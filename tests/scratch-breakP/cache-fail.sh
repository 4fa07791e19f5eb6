# Cache device fails (dm-error) while removed device 9's written-back lines
# are not yet on the record (dead b8 parked in front) and removed device 8
# is dirty: free_cache must work at once; then the claims end.
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
run dmsetup remove wb9
run mgr_msg allow_migrate 0
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:14M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
run dm_swap b8 "0 $sz error"
run wb_create wb9 9 /dev/mapper/b9 1
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen 2000 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
run dmsetup remove wb9
run dm_swap cdev "0 $((32 * 2048)) delay $WB_CACHE 0 300"
run mgr_msg allow_migrate 1
_i=0
until [ "$(cache_dirty)" = 3584 ]; do _i=$((_i+1)); [ $_i -lt 600 ] || die "9 never written back"; sleep 0.1; done
st "9 written back"
run dm_swap cdev "0 $((32 * 2048)) error"
if [ "${WRITE:-1}" = 1 ]; then
  # A write of wb8 makes the segment write fail: the cache is in error.
  dd if=/dev/urandom of=/dev/mapper/wb8 bs=4k count=16 seek=8000 oflag=direct conv=fsync 2>/dev/null && echo "wb8 write ok?" || echo "wb8 write failed (expected)"
fi
dmsetup remove wb8 || klog_tail 3
sleep 2
st "cache device failed"
t0=$(date +%s)
dm_create lin9 --table "0 $sz linear /dev/mapper/b9 0" 2>/dev/null && echo "b9 free while cache failed ($(mgr_status_value error))" || { echo "b9 still claimed"; klog_tail 2; }
dmsetup remove lin9 2>/dev/null || true
run mgr_msg switch_to 1
timeout 60 dmsetup message writeboost-mgr 0 free_cache && echo "free_cache ok after $(( $(date +%s) - t0 )) s" || echo "free_cache status $? after $(( $(date +%s) - t0 )) s"
ls $WB_SYSFS/caches
klog_tail 6
run dm_create lin9 --table "0 $sz linear /dev/mapper/b9 0"
run dm_create lin8 --table "0 $sz linear /dev/mapper/b8 0"
run wbpattern check /dev/mapper/lin9 --region 0:2M --ops 0 --seed 9 --initial gen:2000
echo PASS
