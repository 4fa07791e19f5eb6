. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
run wbpattern fill /dev/mapper/b22 --region 0:8M --gen 1
run dm_create w22 --table "0 $((24 * 2048 - 3)) writeboost /dev/mapper/b22 /dev/mapper/c22 6 writeback_threshold 0 read_cache_threshold 2 nr_read_cache_cells 1"
# many parallel 4K reads with one cell
run fio --name=rr --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=0 --size=4M --direct=1 --ioengine=psync --numjobs=4 --randrepeat=1 --output=/dev/null
# odd reads: 512 B, unaligned 4K, 1 MiB, last sectors of the odd-sized device
run dd if=/dev/mapper/w22 of=/dev/null bs=512 skip=9001 count=1 iflag=direct
run fio --name=u --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=4M --size=2M --offset_align=512 --blockalign=512 --direct=1 --ioengine=psync --output=/dev/null
run dd if=/dev/mapper/w22 of=/dev/null bs=1M skip=6 count=1 iflag=direct
run dd if=/dev/mapper/w22 of=/tmp/last bs=512 skip=$((24 * 2048 - 11)) count=8 iflag=direct
dmsetup status w22
run wbpattern check /dev/mapper/w22 --region 0:8M --ops 0 --initial gen:1
# dirty data: 1 MiB at 2M
run wbpattern fill /dev/mapper/w22 --region 2M:1M --gen 5
run dmsetup suspend w22
run dmsetup resume w22
dmsetup status w22
wb_powercut
