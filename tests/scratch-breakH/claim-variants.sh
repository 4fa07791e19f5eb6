# breakH: variations of device removal during resume_cache (cache device
# slowed with dm-delay): two devices; one re-created over a *different*
# disk during the replay; one removed and re-created over its own disk;
# free_cache right after the resume; data checked.
. /wb/tests/lib.sh
set -e
SZ=$((16 * 2048))
CSZ=$((64 * 2048))
run dm_create c2 --table "0 $CSZ linear $WB_CACHE 0"
run dm_create bA --table "0 $SZ linear $WB_BACKING 0"
run dm_create bB --table "0 $SZ linear $WB_BACKING $SZ"
run dm_create bC --table "0 $SZ linear $WB_BACKING $((2 * SZ))"
run mgr_create
run mgr_msg format_cache_device /dev/mapper/c2
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/c2
run wb_create w10 10 /dev/mapper/bA 2 $SZ
run wb_create w11 11 /dev/mapper/bB 2 $SZ
run wbpattern write /dev/mapper/w10 --region 0:4M --ops 150 --sizes 4K,64K --seed 10 --fsync-every 150
run wbpattern write /dev/mapper/w11 --region 0:4M --ops 150 --sizes 4K,64K --seed 11 --fsync-every 150
run dmsetup remove w10
run dmsetup remove w11
run mgr_msg free_cache
run wb_create w10 10 /dev/mapper/bA 0 $SZ
run wb_create w11 11 /dev/mapper/bB 0 $SZ
echo "0 $CSZ delay $WB_CACHE 0 20" | dmsetup load c2
run dmsetup suspend c2
run dmsetup resume c2
dmesg -c >/dev/null
( mgr_msg resume_cache /dev/mapper/c2; echo "rc $?" > /tmp/rr ) &
usleep 500000
run dmsetup remove w10
run dmsetup remove w11
# w10 back over its disk; w11 over another disk (bC) during the replay
run wb_create w10 10 /dev/mapper/bA 0 $SZ
if wb_create w11 11 /dev/mapper/bC 0 $SZ; then echo "w11 over bC ACCEPTED during resume"; W11C=1; else echo "w11 over bC refused"; W11C=0; fi
[ -f /tmp/rr ] && echo "resume finished too early: $(cat /tmp/rr)"
wait
echo "resume: $(cat /tmp/rr)"
echo "0 $CSZ linear $WB_CACHE 0" | dmsetup load c2
run dmsetup suspend c2
run dmsetup resume c2
dmesg | grep -i writeboost | grep -v "segment headers" | tail -12
echo "w10: $(dmsetup status w10)"
echo "w11: $(dmsetup status w11 2>&1)"
echo "cache dirty $(cat $WB_SYSFS/caches/2/nr_dirty_caches)"
if grep -q "rc 0" /tmp/rr; then
    # w10 was re-created with cache_id 0 during the replay: is it bound?
    wbpattern check /dev/mapper/w10 --region 0:4M --ops 150 --sizes 4K,64K --seed 10 | tail -2 || echo "w10 CHECK FAILED"
    if [ $W11C = 1 ]; then
        echo "w11 (over bC) reads: $(wbpattern check /dev/mapper/w11 --region 0:4M --ops 150 --sizes 4K,64K --seed 11 | tail -1)"
        must_fail dmsetup create xB --table "0 $SZ linear /dev/mapper/bB 0" || true
    fi
fi
# free_cache right after, with devices of dirty data present
dmesg -c > /dev/null
mgr_msg switch_to 2
mgr_msg free_cache && echo "free_cache ACCEPTED" || echo "free_cache refused"
dmesg | tail -5
for n in w10 w11; do dmsetup remove $n 2>/dev/null || true; done
mgr_msg free_cache 2>/dev/null && echo "free_cache after removes ok" || echo "free_cache after removes refused"
dmesg | tail -4
run dmsetup remove xB 2>/dev/null || true
echo "claim-variants done"
