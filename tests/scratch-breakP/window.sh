# Dead disk b8 (parked lines at the tail); device 9 removed dirty, written
# back past them; the record behind (cache device delayed). In that window:
# other tables over b9, device 9 over another disk, device 9 with cache_id 0,
# and how long each refusal lasts.
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
run dm_create b10 --table "0 $sz linear $WB_BACKING $((3 * sz))"
run mgr_msg allow_migrate 0
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:14M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
run dm_swap b8 "0 $sz error"
# window <gen> <delay ms>: device 9 writes gen, removed dirty, cache delayed, written back; record behind
window() {
    run mgr_msg allow_migrate 0
    run wb_create wb9 9 /dev/mapper/b9 1
    run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen $1 --seed 9
    run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
    run dmsetup remove wb9
    run dm_swap cdev "0 $((32 * 2048)) delay $WB_CACHE 0 $2"
    run mgr_msg allow_migrate 1
    _i=0
    until [ "$(cache_dirty)" = 3584 ]; do _i=$((_i+1)); [ $_i -lt 600 ] || die "9 never written back"; sleep 0.1; done
    st "window gen $1: 9 written back"
}
undelay() { run dm_swap cdev "0 $((32 * 2048)) linear $WB_CACHE 0"; }
t0=0; since() { echo "$(( $(date +%s) - t0 )) s"; }

window 2000 200
t0=$(date +%s)
echo "== cycle 1: dm-linear over b9"
if dm_create lin9 --table "0 $sz linear /dev/mapper/b9 0" 2>/tmp/e; then echo "lin9 at once: ok (rec=$(mgr_status_value record_migrated_segment_id))"; else echo "lin9 refused: $(cat /tmp/e)"; klog_tail 2; retry_n 600 dm_create lin9 --table "0 $sz linear /dev/mapper/b9 0"; echo "lin9 after $(since)"; fi
st; run dmsetup remove lin9
undelay

window 2001 200
t0=$(date +%s)
echo "== cycle 2: device 10 over b9"
if dm_create wb10 --table "0 $sz writeboost 10 /dev/mapper/b9 0" 2>/tmp/e; then echo "wb10 at once: ok"; else echo "wb10 refused"; klog_tail 2; retry_n 600 dm_create wb10 --table "0 $sz writeboost 10 /dev/mapper/b9 0"; echo "wb10 after $(since)"; fi
st; run dmsetup remove wb10
undelay

window 2002 200
t0=$(date +%s)
echo "== cycle 3: device 9 over b10"
if dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b10 0" 2>/tmp/e; then echo "wb9/b10 at once: ok"; else echo "wb9/b10 refused"; klog_tail 2; retry_n 600 dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b10 0"; echo "wb9/b10 after $(since)"; fi
st "wb9 over b10 cache_id=$(wbstat wb9)"; run dmsetup remove wb9
undelay

window 2003 200
t0=$(date +%s)
echo "== cycle 4: device 9 over b9 cache_id 2 (no such cache) and 0"
dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b9 2" 2>/tmp/e && echo "cache_id 2 accepted?" || { echo "cache_id 2 refused:"; klog_tail 1; }
run dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b9 0"
dmsetup message wb9 0 add_sysfs
echo "wb9 cache_id=$(wbstat wb9) after $(since)"; klog_tail 2
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen 3003 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
st "V3003 written via wb9 (table cache_id 0)"
wait_clean 9 120
st "wb9 clean"
t0=$(date +%s)
if wb_set_cache wb9 0 2>/tmp/e; then echo "reload cache_id 0: ok after $(since), cache_id=$(wbstat wb9)"; else echo "reload to 0 refused after $(since): $(cat /tmp/e)"; klog_tail 3; fi
undelay
st
run wbpattern check /dev/mapper/b9 --region 0:2M --ops 0 --seed 9 --initial gen:3003
run dmsetup remove wb9

echo "== cycle 5: free_cache right after removing everything, slow cache device (1 s per I/O)"
window 2004 1000
run dmsetup remove wb8
t0=$(date +%s)
run mgr_msg switch_to 1
if mgr_msg free_cache 2>/tmp/e; then echo "free_cache ok after $(since)"; else echo "free_cache refused after $(since): $(cat /tmp/e)"; fi
klog_tail 4
ls $WB_SYSFS/caches
undelay
# Follow the warning: create device 9 over its disk, then write through it.
run dm_create wb9 --table "0 $sz writeboost 9 /dev/mapper/b9 0"
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen 3004 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
run wbpattern check /dev/mapper/b9 --region 0:2M --ops 0 --seed 9 --initial gen:3004
run dm_create wb8 --table "0 $sz writeboost 8 /dev/mapper/b8 0"
run mgr_msg switch_to 1
mgr_msg resume_cache /dev/mapper/cdev || { klog_tail 4; die "resume refused"; }
klog_tail 6
run mgr_msg switch_to 1
st "resumed; wb9 cache_id=$(wbstat wb9)"
sleep 8
st
if wbpattern check /dev/mapper/b9 --region 0:2M --ops 0 --seed 9 --initial gen:3004 >/tmp/c 2>&1; then echo "b9 still holds 3004: held"; else tail -3 /tmp/c; echo "FINDING: b9 lost gen 3004 (written through wb9 after free_cache) to older lines replayed"; fi
if wbpattern check /dev/mapper/wb9 --region 0:2M --ops 0 --seed 9 --initial gen:3004 >/tmp/c 2>&1; then echo "wb9 reads 3004"; else tail -3 /tmp/c; echo "FINDING: wb9 reads older data"; fi
run wbpattern check /dev/mapper/wb8 --region 0:14M --ops 0 --seed 8 --initial gen:1000
echo DONE
