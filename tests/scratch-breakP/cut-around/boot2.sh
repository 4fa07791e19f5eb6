# Boot 2: check V2 (and the discard); then read caching on: device 9 writes
# V3 (dirty), removed, written back past the parked lines, re-created with
# cache_id 0, reads (clean lines), writes V4 over 0:1M with fsync. Cut.
. /wb/tests/lib.sh
set -e
# breakP helpers
sz=$((64 * 2048))
st() { mgr_msg switch_to 1 >/dev/null 2>&1; echo "[$(date +%s)] tail=$(mgr_status_value last_migrated_segment_id) rec=$(mgr_status_value record_migrated_segment_id) flushed=$(mgr_status_value last_flushed_segment_id) dirty=$(mgr_status_value nr_dirty_caches) reloc=$(mgr_status_value nr_relocated_lines) err=$(mgr_status_value error) d8=$(cat $WB_SYSFS/devices/8/nr_dirty_caches 2>/dev/null) d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches 2>/dev/null) $*"; }
wait_klog() { _i=0; until dmesg | grep -q "$1"; do _i=$((_i+1)); [ $_i -lt ${2:-60} ] || return 1; sleep 1; done; }
# retry_ms <max tries of 0.1 s> cmd...: runs cmd until it succeeds; prints tries
retry_n() { _n=$1; shift; _k=0; until "$@" 2>/tmp/rerr; do _k=$((_k+1)); [ $_k -lt $_n ] || { echo "gave up after $_k tries: $(cat /tmp/rerr)"; return 1; }; sleep 0.1; done; echo "ok after $_k retries (x0.1 s)"; }
wbstat() { dmsetup status "$1" | awk '{for(i=1;i<=NF;i++) if($i=="cache_id") print $(i+1)}'; }
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run dm_create b8 --table "0 $sz error"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run mgr_create
run wb_create wb8 8 /dev/mapper/b8 0
run wb_create wb9 9 /dev/mapper/b9 0
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
klog_tail 4
bad=0
wbpattern check /dev/mapper/wb9 --region 0:2M --ops 0 --seed 9 --initial gen:3000 || { echo "FINDING: wb9 0:2M does not read V2 after the cut"; bad=1; }
dd if=/dev/mapper/wb9 of=/tmp/d bs=1M skip=2 count=1 iflag=direct 2>/dev/null
echo "2M:1M (discard: $(mark_get 1)): $(sector_summary /tmp/d | cut -c1-200)"
wbpattern check /dev/mapper/wb9 --region 2M:1M --ops 0 --seed 9 --initial gen:2100 >/dev/null 2>&1 || cmp -s /tmp/d /dev/zero 2>/dev/null || head -c 1048576 /dev/zero | cmp -s /tmp/d - || { echo "FINDING: 2M:1M neither V(2100) nor zeros"; bad=1; }
run wbpattern check /dev/mapper/wb9 --region 3M:1M --ops 0 --seed 9 --initial gen:2100
run mgr_msg allow_migrate 1
run wait_clean 9 120
wbpattern check /dev/mapper/b9 --region 0:2M --ops 0 --seed 9 --initial gen:3000 || { echo "FINDING: b9 0:2M not V2 after drain"; bad=1; }
run wbpattern check /dev/mapper/wb8 --region 0:14M --ops 0 --seed 8 --initial gen:1000
mark_put 2 "boot2bad=$bad"
# Variant B: read caching.
run mgr_msg read_cache_threshold 4
run mgr_msg allow_migrate 0
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen 4000 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
st "V3 written"
run dmsetup remove wb9
run dm_swap cdev "0 $((32 * 2048)) delay $WB_CACHE 0 200"
run mgr_msg allow_migrate 1
d0=$(cache_dirty)
_i=0
until [ "$(cache_dirty)" = 3584 ]; do _i=$((_i+1)); [ $_i -lt 600 ] || die "9 never written back ($(cache_dirty))"; sleep 0.1; done
st "9 written back (was $d0)"
run dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b9 0"
dmsetup message wb9 0 add_sysfs
echo "wb9 cache_id=$(wbstat wb9)"
for b in $(seq 0 2 511); do dd if=/dev/mapper/wb9 of=/dev/null bs=4k skip=$b count=1 iflag=direct 2>/dev/null; done
echo "clean lines $(mgr_status_value nr_clean_caches)"
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:1M --gen 5000 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
st "V4 written"
run wbpattern check /dev/mapper/wb9 --region 0:1M --ops 0 --seed 9 --initial gen:5000
run wbpattern check /dev/mapper/wb9 --region 1M:1M --ops 0 --seed 9 --initial gen:4000
wb_powercut
