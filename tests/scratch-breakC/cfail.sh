. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
run wbpattern fill /dev/mapper/b22 --region 0:4M --gen 1
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 4 writeback_threshold 0 read_cache_threshold 4"
run fio --name=rr --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=0 --size=1M --direct=1 --ioengine=psync --randrepeat=1 --output=/dev/null
run dmsetup suspend w22
run dmsetup resume w22
run dmsetup suspend c22
run dmsetup load c22 --table "0 $((12 * 2048)) error"
run dmsetup resume c22
set +e
t0=$(date +%s)
wbpattern check /dev/mapper/w22 --region 0:1M --ops 0 --initial gen:1 | tail -2; echo "clean-line reads rc $?"
timeout 60 fio --name=rr --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=1M --size=2M --direct=1 --ioengine=psync --randrepeat=1 --output=/dev/null; echo "new reads rc $?"
wbpattern check /dev/mapper/w22 --region 1M:2M --ops 0 --initial gen:1 | tail -1; echo "rc"
timeout 30 dd if=/dev/urandom of=/dev/mapper/w22 bs=4k seek=1500 count=1 oflag=direct conv=fsync; echo "write rc $?"
dmsetup status w22
echo "elapsed $(( $(date +%s) - t0 )) s"
dmesg | grep writeboost | tail -8
timeout 60 dmsetup remove w22; echo "remove rc $?"
echo "cfail END"
