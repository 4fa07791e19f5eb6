. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
run wbpattern fill /dev/mapper/b22 --region 0:4M --gen 1
T="0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 4 writeback_threshold 50 read_cache_threshold 4"
run dm_create w22 --table "$T"
fio --name=rr --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=0 --size=4M --direct=1 --ioengine=psync --time_based --runtime=25 --output=/dev/null &
F=$!
( i=0; while [ $i -lt 20 ]; do dmsetup message w22 0 read_cache_threshold $((i % 3 * 60)) || echo "msg fail"; sleep 0.2; i=$((i+1)); done ) &
M=$!
( sleep 2; for v in 0 8 127; do dmsetup load w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 4 writeback_threshold 50 read_cache_threshold $v" && dmsetup suspend w22 && dmsetup resume w22 || echo "reload fail"; sleep 1; done ) &
R=$!
run wbpattern write /dev/mapper/w22 --region 0:4M --ops 600 --sizes 512,4K,8K --align 512 --gen-base 10 --fsync-every 100 > /tmp/w
wait $M; wait $R; wait $F || true
dmsetup table w22
dmsetup status w22
run wbpattern check /dev/mapper/w22 --region 0:4M --ops 600 --sizes 512,4K,8K --align 512 --gen-base 10 --initial gen:1
run dmsetup message w22 0 drop_caches
run wbpattern check /dev/mapper/b22 --region 0:4M --ops 600 --sizes 512,4K,8K --align 512 --gen-base 10 --initial gen:1
run dmsetup remove w22
echo "reload END"
