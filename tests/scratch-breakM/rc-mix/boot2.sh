. /wb/tests/lib.sh
# shared helpers for breakM scripts
randreads() { # dev nblocks count seed [firstblock]
    awk -v n=$2 -v c=$3 -v s=$4 -v f=${5:-0} 'BEGIN{srand(s); for(i=0;i<c;i++) print f+int(rand()*n)}' | while read b; do
        dd if=$1 of=/dev/null bs=4k skip=$b count=1 iflag=direct 2>/dev/null || echo "read of block $b failed"
    done
}
set -e
sz=$((64*2048))
run dm_create b1 --table "0 $sz linear $WB_BACKING 0"
run dm_create b2 --table "0 $sz linear $WB_BACKING $sz"
run mgr_create
run wb_create wb1 1 /dev/mapper/b1 0
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
run wb_set_cache wb1 1
dmesg | grep -i "clean\|cache 1" | tail -5
echo "clean after resume: $(mgr_status_value nr_clean_caches) dirty $(cache_dirty)"
run mgr_msg read_cache_threshold 4
# wb2 pass-through first (it has no dirty data), write, then attach
run wb_create wb2 2 /dev/mapper/b2 0
run wbpattern fill /dev/mapper/wb2 --region 16M:8M --gen 5000 --seed 22
run wbpattern fill /dev/mapper/wb2 --region 0:4M --gen 5000 --seed 2
sync
run wb_set_cache wb2 1
chk() {
run wbpattern check /dev/mapper/wb1 --region 0:32M --ops 3000 --sizes 4K,8K,64K --seed 1 --gen-base 2000 --initial gen:1000
run wbpattern check /dev/mapper/wb2 --region 16M:8M --ops 0 --initial gen:5000 --seed 22
run wbpattern check /dev/mapper/wb2 --region 0:4M --ops 0 --initial gen:5000 --seed 2
run wbpattern check /dev/mapper/wb2 --region 4M:12M --ops 0 --initial gen:1000 --seed 2
run wbpattern check /dev/mapper/wb2 --region 24M:4M --ops 0 --initial gen:3500 --seed 23
}
chk
randreads /dev/mapper/wb1 8192 300 11
randreads /dev/mapper/wb2 8192 300 12
chk
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
wait_cache_clean 180 || die "no drain"
chk
echo "clean $(mgr_status_value nr_clean_caches)"
# writes under load, then a cut right after an fsync
run wbpattern write /dev/mapper/wb1 --region 0:32M --ops 1500 --sizes 4K,64K --seed 1 --gen-base 8000 --fsync-every 1500
randreads /dev/mapper/wb1 8192 200 13 &
fio --name=bg --filename=/dev/mapper/wb2 --offset=16M --size=8M --rw=randwrite --bs=4k --direct=1 --ioengine=libaio --iodepth=16 --time_based --runtime=60 >/dev/null 2>&1 &
sleep 3
wb_powercut
