# free_cache's 10 s wait runs out (cache device slow: 1 s per I/O) while a
# removed device's written-back lines are not yet on the record; the
# warning says "create device_id 9 over its disk before writing to the
# disk otherwise". The admin does exactly that, writes through it, then
# resumes the cache. Does the device read, and its disk keep, the newer data?
. /wb/tests/lib.sh
set -e
# breakP helpers
sz=$((64 * 2048))
st() { mgr_msg switch_to 1 >/dev/null 2>&1; echo "[$(date +%s)] tail=$(mgr_status_value last_migrated_segment_id) rec=$(mgr_status_value record_migrated_segment_id) flushed=$(mgr_status_value last_flushed_segment_id) dirty=$(mgr_status_value nr_dirty_caches) reloc=$(mgr_status_value nr_relocated_lines) err=$(mgr_status_value error) d8=$(cat $WB_SYSFS/devices/8/nr_dirty_caches 2>/dev/null) d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches 2>/dev/null) $*"; }
wait_klog() { _i=0; until dmesg | grep -q "$1"; do _i=$((_i+1)); [ $_i -lt ${2:-60} ] || return 1; sleep 1; done; }
# retry_ms <max tries of 0.1 s> cmd...: runs cmd until it succeeds; prints tries
retry_n() { _n=$1; shift; _k=0; until "$@" 2>/tmp/rerr; do _k=$((_k+1)); [ $_k -lt $_n ] || { echo "gave up after $_k tries: $(cat /tmp/rerr)"; return 1; }; sleep 0.1; done; echo "ok after $_k retries (x0.1 s)"; }
wbstat() { dmsetup status "$1" | awk '{for(i=1;i<=NF;i++) if($i=="cache_id") print $(i+1)}'; }
DELAY=${DELAY:-1000}
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
run dm_swap cdev "0 $((32 * 2048)) delay $WB_CACHE 0 $DELAY"
run mgr_msg allow_migrate 1
_i=0
until [ "$(cache_dirty)" = 3584 ]; do _i=$((_i+1)); [ $_i -lt 600 ] || die "9 never written back"; sleep 0.1; done
st "9 written back"
run dmsetup remove wb8
run mgr_msg switch_to 1
t0=$(date +%s)
run mgr_msg free_cache
echo "free_cache took $(( $(date +%s) - t0 )) s"
klog_tail 5
run dm_swap cdev "0 $((32 * 2048)) linear $WB_CACHE 0"
run dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b9 0"
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen 3000 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
run wbpattern check /dev/mapper/b9 --region 0:2M --ops 0 --seed 9 --initial gen:3000
run dm_create wb8 --table "0 $sz writeboost 8 /dev/mapper/b8 0"
run mgr_msg switch_to 1
mgr_msg resume_cache /dev/mapper/cdev || { klog_tail 3; die "resume refused"; }
klog_tail 5
dmsetup message wb9 0 add_sysfs || true
run mgr_msg switch_to 1
run mgr_msg allow_migrate 1
st "resumed, wb9 cache_id=$(wbstat wb9)"
wait_clean 9 60
st "9 drained"
bad=0
wbpattern check /dev/mapper/wb9 --region 0:2M --ops 0 --seed 9 --initial gen:3000 >/tmp/c 2>&1 || { tail -2 /tmp/c; echo "FINDING: wb9 reads older data than its last durable write"; bad=1; }
wbpattern check /dev/mapper/b9 --region 0:2M --ops 0 --seed 9 --initial gen:3000 >/tmp/c 2>&1 || { tail -2 /tmp/c; echo "FINDING: b9 got the older data written back over the newer"; bad=1; }
run wbpattern check /dev/mapper/wb8 --region 0:14M --ops 0 --seed 8 --initial gen:1000
[ $bad = 0 ] || die "older data replaced newer (see FINDING lines)"
echo PASS
