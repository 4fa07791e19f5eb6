# breakC: read caching + write-around together, reads racing write-around
# writes, then a power cut right after a fdatasync.
. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
run wbpattern fill /dev/mapper/b22 --region 0:8M --gen 1
# Normal mode first: dirty lines of 0:2M, clean lines of 2M:6M.
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 4 writeback_threshold 0 read_cache_threshold 4"
run wbpattern fill /dev/mapper/w22 --region 0:2M --gen 2
run fio --name=rr --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=2M --size=4M --direct=1 --ioengine=psync --randrepeat=1 --output=/dev/null
dmsetup status w22
run dmsetup remove w22
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 6 writeback_threshold 0 read_cache_threshold 4 write_around_mode 1"
dmsetup status w22
run wbpattern check /dev/mapper/w22 --region 0:2M --ops 0 --initial gen:2
run wbpattern check /dev/mapper/w22 --region 2M:6M --ops 0 --initial gen:1
# Reads racing writes (write-around + read caching).
fio --name=rr --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=0 --size=8M --direct=1 --ioengine=psync --time_based --runtime=30 --output=/dev/null &
FIO=$!
wbpattern write /dev/mapper/w22 --region 0:8M --ops 600 --sizes 512,4K,8K,4K --align 512 --gen-base 100 --fsync-every 25 > /tmp/wlog 2>&1 || { cat /tmp/wlog; die "writer failed"; }
kill $FIO 2>/dev/null || true
wait $FIO 2>/dev/null || true
tail -2 /tmp/wlog
dmsetup status w22
run dd if=/dev/zero of=/tmp/ref bs=1M count=8 2>/dev/null
run wbpattern fill /tmp/ref --region 0:8M --gen 1
run wbpattern fill /tmp/ref --region 0:2M --gen 2
run wbpattern write /tmp/ref --region 0:8M --ops 600 --sizes 512,4K,8K,4K --align 512 --gen-base 100
dd if=/dev/mapper/w22 of=/tmp/got bs=1M count=8 iflag=direct 2>/dev/null
cmp /tmp/ref /tmp/got || { cmp -l /tmp/ref /tmp/got | wc -l; die "data after the racing writes differs"; }
dd if=/dev/mapper/b22 of=/tmp/got bs=1M count=8 iflag=direct 2>/dev/null
cmp /tmp/ref /tmp/got > /dev/null && echo "backing holds everything" || echo "backing differs (dirty lines from normal mode not yet written back)"
# Read everything (stage clean lines of the new data), then more writes and the cut.
run fio --name=rr --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=0 --size=8M --direct=1 --ioengine=psync --randrepeat=0 --output=/dev/null
run wbpattern write /dev/mapper/w22 --region 0:8M --ops 100 --seed 9 --sizes 512,4K --align 512 --gen-base 1000 --fsync-every 100
dmsetup status w22
wb_powercut
