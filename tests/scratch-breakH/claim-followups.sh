# breakH follow-ups: (1) device_id 11 re-created over another disk while the
# cache holds 11's dirty data of its old disk, then attached to the cache
# by a reload; (2) the documented best-effort case on a live cache: a
# dm-linear already holds the disk when device 12 (dirty) is removed; data
# fsynced through the linear afterwards vs. write-back of 12's lines.
. /wb/tests/lib.sh
set -e
SZ=$((16 * 2048))
run dm_create bB --table "0 $SZ linear $WB_BACKING $SZ"
run dm_create bC --table "0 $SZ linear $WB_BACKING $((2 * SZ))"
run dm_create bD --table "0 $SZ linear $WB_BACKING $((3 * SZ))"
run cache_setup
run wb_create w11 11 /dev/mapper/bB 1 $SZ
run wbpattern write /dev/mapper/w11 --region 0:4M --ops 100 --sizes 4K,64K --seed 11 --fsync-every 100
run dmsetup remove w11
dmesg | tail -1
wb_create w11 11 /dev/mapper/bC 0 $SZ || echo "w11 over bC refused"
if dmsetup info w11 >/dev/null 2>&1; then
    if wb_set_cache w11 1; then echo "w11 over bC ATTACHED to cache 1: $(dmsetup status w11)"; else echo "attach refused: $(dmesg | tail -2)"; dmsetup resume w11 2>/dev/null || true; fi
    dmsetup remove w11 || true
fi
# (2)
run wb_create w12 12 /dev/mapper/bD 1 $SZ
mkfill S 4194304 /tmp/S
run dd if=/tmp/S of=/dev/mapper/w12 bs=64k oflag=direct conv=fsync 2>/dev/null
if dm_create xD --table "0 $SZ linear /dev/mapper/bD 0"; then
    echo "linear over bD ACCEPTED while w12 is live with dirty data"
    run dmsetup remove w12
    dmesg | tail -2
    mkfill N 4194304 /tmp/N
    dd if=/tmp/N of=/dev/mapper/xD bs=64k oflag=direct conv=fsync 2>/dev/null
    mgr_msg allow_migrate 1 || true
    i=0; while [ "$(cat $WB_SYSFS/caches/1/nr_dirty_caches)" != 0 ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done
    dd if=/dev/mapper/xD of=/tmp/got bs=64k count=64 iflag=direct 2>/dev/null
    cmp -s /tmp/got /tmp/N && echo "xD intact" || echo "xD OVERWRITTEN: $(sector_summary /tmp/got | cut -c1-200)"
else
    echo "linear over bD refused while w12 live"
fi
echo "claim-followups done"
