# Read caching with removal while dirty, re-creation, detach, pass-through
# writes, free_cache + resume_cache (clean lines of the log must not come
# back over the pass-through data), then attach and check.
. /wb/tests/lib.sh
set -e
rr() { awk -v s=$2 'BEGIN{srand(s); for(i=0;i<400;i++) print int(rand()*4096)}' | while read b; do dd if=$1 of=/dev/null bs=4k skip=$b count=1 iflag=direct 2>/dev/null; done; }
sz=$((64*2048))
run cache_setup
run mgr_msg read_cache_threshold 4
run dm_create b1 --table "0 $sz linear $WB_BACKING 0"
run wbpattern fill /dev/mapper/b1 --region 0:16M --gen 1 --seed 1
sync
run wb_create wb1 1 /dev/mapper/b1 1
rr /dev/mapper/wb1 1
echo "clean $(mgr_status_value nr_clean_caches)"
run wbpattern write /dev/mapper/wb1 --region 0:16M --ops 300 --sizes 4K --seed 1 --gen-base 100 --fsync-every 300
rr /dev/mapper/wb1 2
echo "clean $(mgr_status_value nr_clean_caches) dirty $(cache_dirty)"
run dmsetup message wb1 0 remove_sysfs
run dmsetup remove wb1
must_fail dm_create other --table "0 $sz linear /dev/mapper/b1 0"
run wb_create wb1 1 /dev/mapper/b1 1
run wbpattern check /dev/mapper/wb1 --region 0:16M --ops 300 --sizes 4K --seed 1 --gen-base 100 --initial gen:1
rr /dev/mapper/wb1 3
run mgr_msg flush_current_buffer
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
wait_cache_clean 120 || die "no drain"
rr /dev/mapper/wb1 4
run mgr_msg flush_current_buffer
echo "clean before detach $(mgr_status_value nr_clean_caches)"
run wb_set_cache wb1 0
# pass-through: every block gets gen 500 (stream seed 1 fill)
run wbpattern fill /dev/mapper/wb1 --region 0:16M --gen 500 --seed 1
sync
run mgr_msg free_cache
run mgr_msg switch_to 1
m=$(dmesg | wc -l)
run mgr_msg resume_cache $WB_CACHE
dmesg | tail -n +$((m+1)) | grep "cache 1" | grep -v "resume read"
run mgr_msg read_cache_threshold 4
run wb_set_cache wb1 1
run wbpattern check /dev/mapper/wb1 --region 0:16M --ops 0 --seed 1 --initial gen:500
rr /dev/mapper/wb1 5
run wbpattern check /dev/mapper/wb1 --region 0:16M --ops 0 --seed 1 --initial gen:500
# remove re-create with clean lines only, then suspend/resume
run dmsetup message wb1 0 remove_sysfs
run dmsetup remove wb1
run wb_create wb1 1 /dev/mapper/b1 1
run wbpattern check /dev/mapper/wb1 --region 0:16M --ops 0 --seed 1 --initial gen:500
echo "rc-free-resume OK"
