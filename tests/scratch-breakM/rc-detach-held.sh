# Device 2's dirty data holds the record back (migration off); device 1
# has only clean lines (read caching) in later segments. Detach device 1,
# write it pass-through, remove device 2 (dirty), free_cache, create device
# 2 again (cache 0), resume_cache: device 1's replayed clean lines must not
# shadow the pass-through data after it attaches again.
. /wb/tests/lib.sh
set -e
rr() { awk -v s=$2 'BEGIN{srand(s); for(i=0;i<400;i++) print int(rand()*4096)}' | while read b; do dd if=$1 of=/dev/null bs=4k skip=$b count=1 iflag=direct 2>/dev/null; done; }
sz=$((64*2048))
run cache_setup
run mgr_msg read_cache_threshold 4
run dm_create b1 --table "0 $sz linear $WB_BACKING 0"
run dm_create b2 --table "0 $sz linear $WB_BACKING $sz"
run wbpattern fill /dev/mapper/b1 --region 0:16M --gen 1 --seed 1
sync
run wb_create wb1 1 /dev/mapper/b1 1
run wb_create wb2 2 /dev/mapper/b2 1
run wbpattern fill /dev/mapper/wb2 --region 0:4M --gen 7 --seed 2
rr /dev/mapper/wb1 1
run mgr_msg flush_current_buffer
echo "clean $(mgr_status_value nr_clean_caches) dirty $(cache_dirty) rec $(mgr_status_value record_migrated_segment_id)"
rc=0; timeout 60 sh -c '. /wb/tests/lib.sh; wb_set_cache wb1 0' || rc=$?
echo "detach of device 1 (clean lines only, record held by device 2): status $rc"
dmsetup status wb1
if [ $rc != 0 ]; then dmesg | tail -3; dmsetup resume wb1 2>/dev/null || true; dmsetup table wb1; fi
dmsetup table wb1 | grep -q " 0$" || die "device 1 did not detach"
run wbpattern fill /dev/mapper/wb1 --region 0:16M --gen 500 --seed 1
sync
run dmsetup message wb2 0 remove_sysfs
run dmsetup remove wb2
run mgr_msg free_cache
run wb_create wb2 2 /dev/mapper/b2 0
run mgr_msg switch_to 1
m=$(dmesg | wc -l)
run mgr_msg resume_cache $WB_CACHE
dmesg | tail -n +$((m+1)) | grep "cache 1" | grep -v "resume read"
run wb_set_cache wb2 1
run wb_set_cache wb1 1
run wbpattern check /dev/mapper/wb1 --region 0:16M --ops 0 --seed 1 --initial gen:500
run wbpattern check /dev/mapper/wb2 --region 0:4M --ops 0 --seed 2 --initial gen:7
run mgr_msg allow_migrate 1
wait_cache_clean 120 || die "no drain"
run wbpattern check /dev/mapper/b1 --region 0:16M --ops 0 --seed 1 --initial gen:500
run wbpattern check /dev/mapper/b2 --region 0:4M --ops 0 --seed 2 --initial gen:7
echo "rc-detach-held OK"
