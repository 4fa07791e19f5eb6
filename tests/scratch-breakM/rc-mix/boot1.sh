# Read caching mixed with writes, migration, discards, detach/attach and
# pass-through writes (2013 form), then a power cut right after durable data.
. /wb/tests/lib.sh
# shared helpers for breakM scripts
randreads() { # dev nblocks count seed [firstblock]
    awk -v n=$2 -v c=$3 -v s=$4 -v f=${5:-0} 'BEGIN{srand(s); for(i=0;i<c;i++) print f+int(rand()*n)}' | while read b; do
        dd if=$1 of=/dev/null bs=4k skip=$b count=1 iflag=direct 2>/dev/null || echo "read of block $b failed"
    done
}
set -e
run cache_setup
run mgr_msg read_cache_threshold 4
sz=$((64*2048))
run dm_create b1 --table "0 $sz linear $WB_BACKING 0"
run dm_create b2 --table "0 $sz linear $WB_BACKING $sz"
run wbpattern fill /dev/mapper/b1 --region 0:32M --gen 1000 --seed 1
run wbpattern fill /dev/mapper/b2 --region 0:16M --gen 1000 --seed 2
run wbpattern fill /dev/mapper/b2 --region 16M:8M --gen 1000 --seed 22
run wbpattern fill /dev/mapper/b2 --region 24M:8M --gen 1000 --seed 23
sync
run wb_create wb1 1 /dev/mapper/b1 1
run wb_create wb2 2 /dev/mapper/b2 1
randreads /dev/mapper/wb1 8192 300 1
randreads /dev/mapper/wb2 8192 300 2
echo "clean after reads: $(mgr_status_value nr_clean_caches)"
run mgr_msg flush_current_buffer
run wbpattern write /dev/mapper/wb1 --region 0:32M --ops 2000 --sizes 4K,8K,64K --seed 1 --gen-base 2000 --fsync-every 100
randreads /dev/mapper/wb1 8192 300 3
run wbpattern fill /dev/mapper/wb2 --region 16M:8M --gen 3000 --seed 22
run wbpattern fill /dev/mapper/wb2 --region 24M:8M --gen 3000 --seed 23
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
run mgr_msg flush_current_buffer
wait_cache_clean 180 || die "no drain"
run mgr_msg force_migrate 0
run mgr_msg allow_migrate 0
randreads /dev/mapper/wb1 8192 400 4
randreads /dev/mapper/wb2 2048 200 5 4096
randreads /dev/mapper/wb2 2048 200 6 6144
echo "clean after reads of migrated data: $(mgr_status_value nr_clean_caches)"
run wbpattern check /dev/mapper/wb1 --region 0:32M --ops 2000 --sizes 4K,8K,64K --seed 1 --gen-base 2000 --initial gen:1000
# discard 24M:8M of wb2, then rewrite half of it (durable)
run blkdiscard -o $((24<<20)) -l $((8<<20)) /dev/mapper/wb2
run wbpattern fill /dev/mapper/wb2 --region 24M:4M --gen 3500 --seed 23
sync
randreads /dev/mapper/wb2 2048 200 7 6144
# detach wb2, pass-through writes, attach
run mgr_msg flush_current_buffer
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
wait_cache_clean 180 || die "no drain 2"
run mgr_msg force_migrate 0
run mgr_msg allow_migrate 0
run wb_set_cache wb2 0
run wbpattern fill /dev/mapper/wb2 --region 16M:8M --gen 4000 --seed 22
sync
run wb_set_cache wb2 1
randreads /dev/mapper/wb2 2048 300 8 4096
run wbpattern check /dev/mapper/wb2 --region 16M:8M --ops 0 --initial gen:4000 --seed 22
# more writes to wb1 (ops 2001..3000), all durable
run wbpattern write /dev/mapper/wb1 --region 0:32M --ops 3000 --sizes 4K,8K,64K --seed 1 --gen-base 2000 --fsync-every 100
randreads /dev/mapper/wb1 8192 300 9
run mgr_msg flush_current_buffer
echo "clean before cut: $(mgr_status_value nr_clean_caches) dirty $(cache_dirty)"
dmsetup status writeboost-mgr | grep -E "segment|nr_"
wb_powercut
