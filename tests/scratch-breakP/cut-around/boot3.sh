. /wb/tests/lib.sh
set -e
# breakP helpers
sz=$((64 * 2048))
st() { mgr_msg switch_to 1 >/dev/null 2>&1; echo "[$(date +%s)] tail=$(mgr_status_value last_migrated_segment_id) rec=$(mgr_status_value record_migrated_segment_id) flushed=$(mgr_status_value last_flushed_segment_id) dirty=$(mgr_status_value nr_dirty_caches) reloc=$(mgr_status_value nr_relocated_lines) err=$(mgr_status_value error) d8=$(cat $WB_SYSFS/devices/8/nr_dirty_caches 2>/dev/null) d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches 2>/dev/null) $*"; }
wait_klog() { _i=0; until dmesg | grep -q "$1"; do _i=$((_i+1)); [ $_i -lt ${2:-60} ] || return 1; sleep 1; done; }
# retry_ms <max tries of 0.1 s> cmd...: runs cmd until it succeeds; prints tries
retry_n() { _n=$1; shift; _k=0; until "$@" 2>/tmp/rerr; do _k=$((_k+1)); [ $_k -lt $_n ] || { echo "gave up after $_k tries: $(cat /tmp/rerr)"; return 1; }; sleep 0.1; done; echo "ok after $_k retries (x0.1 s)"; }
wbstat() { dmsetup status "$1" | awk '{for(i=1;i<=NF;i++) if($i=="cache_id") print $(i+1)}'; }
echo "boot2: $(mark_get 2)"
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run dm_create b8 --table "0 $sz linear $WB_BACKING $sz"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run mgr_create
run wb_create wb8 8 /dev/mapper/b8 0
run wb_create wb9 9 /dev/mapper/b9 0
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
klog_tail 4
bad=0
wbpattern check /dev/mapper/wb9 --region 0:1M --ops 0 --seed 9 --initial gen:5000 || { echo "FINDING: 0:1M not V4"; bad=1; }
wbpattern check /dev/mapper/wb9 --region 1M:1M --ops 0 --seed 9 --initial gen:4000 || { echo "FINDING: 1M:1M not V3"; bad=1; }
run mgr_msg allow_migrate 1
wait_cache_clean 120 || die "never drained"
wbpattern check /dev/mapper/b9 --region 0:1M --ops 0 --seed 9 --initial gen:5000 || { echo "FINDING: b9 0:1M not V4"; bad=1; }
wbpattern check /dev/mapper/b9 --region 1M:1M --ops 0 --seed 9 --initial gen:4000 || { echo "FINDING: b9 1M:1M not V3"; bad=1; }
run wbpattern check /dev/mapper/b8 --region 0:14M --ops 0 --seed 8 --initial gen:1000
case "$(mark_get 2)" in *bad=1*) bad=1;; esac
[ $bad = 0 ] || die "findings above"
echo PASS
