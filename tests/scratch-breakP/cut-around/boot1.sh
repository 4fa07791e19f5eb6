# Boot 1: device 9 removed dirty behind dead b8's parked lines, written back
# past them, record behind (cache delayed). write_around_mode 1, device 9
# re-created with cache_id 0 (routed through cache 1), writes V2 over 0:2M
# with fsync and discards 2M:1M. Power cut.
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
run mgr_msg allow_migrate 0
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:14M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
run dm_swap b8 "0 $sz error"
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen 2000 --seed 9
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 2M:2M --gen 2100 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
run dmsetup remove wb9
run dm_swap cdev "0 $((32 * 2048)) delay $WB_CACHE 0 200"
run mgr_msg allow_migrate 1
_i=0
until [ "$(cache_dirty)" = 3584 ]; do _i=$((_i+1)); [ $_i -lt 600 ] || die "9 never written back"; sleep 0.1; done
st "9 written back"
[ "$(mgr_status_value record_migrated_segment_id)" = 0 ] || die "window missed"
run mgr_msg write_around_mode 1
run dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b9 0"
dmsetup message wb9 0 add_sysfs
echo "wb9 cache_id=$(wbstat wb9)"; klog_tail 2
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen 3000 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
if blkdiscard -o $((2 * 1048576)) -l 1048576 /dev/mapper/wb9; then mark_put 1 discarded; else mark_put 1 nodiscard; fi
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
st "V2 written, discard $(mark_get 1); wb9 dirty $(cat $WB_SYSFS/devices/9/nr_dirty_caches)"
run wbpattern check /dev/mapper/wb9 --region 0:2M --ops 0 --seed 9 --initial gen:3000
wb_powercut
