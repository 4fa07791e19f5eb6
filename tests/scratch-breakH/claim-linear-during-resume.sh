# breakH: device 126 (dirty data in cache 2) removed while resume_cache
# replays the log (cache device slowed by dm-delay), and a dm-linear is
# created over its disk *during* the resume (before the cache is
# published). Data written+fsynced through the linear must not be
# overwritten later by write-back of 126's stale lines.
. /wb/tests/lib.sh
set -e
SZ=$((32 * 2048))
CSZ=$((64 * 2048))
run dm_create c2 --table "0 $CSZ linear $WB_CACHE 0"
run dm_create back126 --table "0 $SZ linear $WB_BACKING 0"
run mgr_create
run mgr_msg format_cache_device /dev/mapper/c2
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/c2
run wb_create wb126 126 /dev/mapper/back126 2 $SZ
# stale data: 'S' over the first 8 MiB
mkfill S 8388608 /tmp/S
run dd if=/tmp/S of=/dev/mapper/wb126 bs=64k oflag=direct conv=fsync 2>/dev/null
sync
dirty=$(cat $WB_SYSFS/caches/2/nr_dirty_caches)
echo "dirty=$dirty"
[ "$dirty" -gt 0 ] || die "no dirty data"
run dmsetup remove wb126
run mgr_msg free_cache
run wb_create wb126 126 /dev/mapper/back126 0 $SZ
echo "0 $CSZ delay $WB_CACHE 0 20" | dmsetup load c2
run dmsetup suspend c2
run dmsetup resume c2
dmesg -c >/dev/null
( mgr_msg resume_cache /dev/mapper/c2; echo "rc $?" > /tmp/rr ) &
usleep 500000
run dmsetup remove wb126
echo "+ dmsetup create xl over back126 during the resume"
if dm_create xl --table "0 $SZ linear /dev/mapper/back126 0"; then
    echo "linear ACCEPTED during resume"
    mkfill N 8388608 /tmp/N
    dd if=/tmp/N of=/dev/mapper/xl bs=64k oflag=direct conv=fsync 2>/dev/null || echo "write via xl failed"
    LIN=1
else
    echo "linear refused during resume"
    LIN=0
fi
[ -f /tmp/rr ] && echo "resume already finished before the linear: $(cat /tmp/rr)"
wait
echo "resume: $(cat /tmp/rr)"
echo "0 $CSZ linear $WB_CACHE 0" | dmsetup load c2
run dmsetup suspend c2
run dmsetup resume c2
dmesg | grep -i writeboost | tail -8
echo "dirty after resume: $(cat $WB_SYSFS/caches/2/nr_dirty_caches)"
if [ $LIN = 1 ]; then
    mgr_msg switch_to 2
    mgr_msg allow_migrate 1 || true
    i=0
    while [ "$(cat $WB_SYSFS/caches/2/nr_dirty_caches)" != 0 ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done
    echo "dirty after waiting: $(cat $WB_SYSFS/caches/2/nr_dirty_caches)"
    dd if=/dev/mapper/xl of=/tmp/got bs=64k count=128 iflag=direct 2>/dev/null
    if cmp -s /tmp/got /tmp/N; then
        echo "xl data intact"
    else
        echo "xl data: $(sector_summary /tmp/got | cut -c1-300)"
        die "fsynced data written through dm-linear during the resume was overwritten by write-back of device 126's stale lines"
    fi
    run dmsetup remove xl
fi
echo "claim-linear-during-resume done"
