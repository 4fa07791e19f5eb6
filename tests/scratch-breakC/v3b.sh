. /wb/tests/lib.sh
set -e
size=$(sectors_of $WB_BACKING)
run wbimage /tmp/v3.img --segments 15 --device-sectors $size --lines 40 --crc32c
run dd if=/tmp/v3.img of=$WB_CACHE bs=1M oflag=direct 2>/dev/null
dd if=/dev/zero of=$WB_BACKING bs=4k count=512 oflag=direct 2>/dev/null
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 $size
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
run mgr_msg allow_migrate 0
run wb_set_cache wb1 1
set +e
mgr_msg read_cache_threshold 4 && echo "BUG? read cache accepted on v3"; dmesg | tail -1
mgr_msg nr_read_cache_cells 5 && echo "nr_read_cache_cells accepted on v3 (now $(mgr_status_value nr_read_cache_cells))"; dmesg | tail -1
mgr_msg nr_read_cache_cells 0; dmesg | tail -1
mgr_msg read_cache_threshold 200; dmesg | tail -1
mgr_msg write_around_mode 2; dmesg | tail -1
mgr_msg write_around_mode x; dmesg | tail -1
echo 2 > $WB_SYSFS/caches/1/write_around_mode; echo "sysfs 2 rc $?"; dmesg | tail -1
dmsetup status writeboost-mgr | grep -E "segment_header|read_cache|write_around|nr_clean"
set -e
# Toggle write-around while a writer runs over the 40 cached blocks and more.
run wbpattern fill /dev/mapper/wb1 --region 0:1M --gen 1
( i=0; while [ $i -lt 40 ]; do echo $((i % 2)) > $WB_SYSFS/caches/1/write_around_mode; sleep 0.1; i=$((i+1)); done ) &
T=$!
run wbpattern write /dev/mapper/wb1 --region 0:1M --ops 800 --sizes 512,4K,8K --align 512 --gen-base 10 --fsync-every 50 > /tmp/w 2>&1
wait $T
echo 0 > $WB_SYSFS/caches/1/write_around_mode
run wbpattern check /dev/mapper/wb1 --region 0:1M --ops 800 --sizes 512,4K,8K --align 512 --gen-base 10 --initial gen:1
cat $WB_SYSFS/devices/1/nr_dirty_caches
run mgr_msg allow_migrate 1
wait_clean 1 60
run wbpattern check $WB_BACKING --region 0:1M --ops 800 --sizes 512,4K,8K --align 512 --gen-base 10 --initial gen:1
run dmsetup remove wb1
run mgr_msg free_cache
run writeboost-check $WB_CACHE
writeboost-dump $WB_CACHE --segments none | head -3
echo "v3b END"
