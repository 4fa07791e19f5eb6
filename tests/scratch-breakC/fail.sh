. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
run wbpattern fill /dev/mapper/b22 --region 0:4M --gen 1
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 6 writeback_threshold 0 read_cache_threshold 4 write_around_mode 1"
run dd if=/dev/mapper/w22 of=/dev/null bs=4k skip=10 count=1 iflag=direct
run dd if=/dev/mapper/w22 of=/dev/null bs=4k skip=20 count=1 iflag=direct
# Backing fails.
run dmsetup suspend b22
run dmsetup load b22 --table "0 $((24 * 2048)) error"
run dmsetup resume b22
set +e
t0=$(date +%s)
dd if=/dev/mapper/w22 of=/tmp/r10 bs=4k skip=10 count=1 iflag=direct; echo "cached read rc $?"
dd if=/dev/mapper/w22 of=/dev/null bs=4k skip=30 count=1 iflag=direct; echo "uncached read rc $? (want fail)"
dd if=/dev/urandom of=/dev/mapper/w22 bs=4k seek=40 count=1 oflag=direct conv=fsync; echo "wa write rc $? (want fail)"
dd if=/dev/urandom of=/tmp/n20 bs=4k count=1 2>/dev/null
dd if=/tmp/n20 of=/dev/mapper/w22 bs=4k seek=20 count=1 oflag=direct conv=fsync; echo "write over clean line rc $?"
dd if=/dev/urandom of=/dev/mapper/w22 bs=512 seek=401 count=1 oflag=direct conv=fsync; echo "wa 512 write rc $?"
sync; echo "sync rc $?"
dmsetup status w22
echo "elapsed $(( $(date +%s) - t0 )) s"
dmesg | tail -8
set -e
run dmsetup suspend b22
run dmsetup load b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dmsetup resume b22
dd if=/dev/mapper/w22 of=/tmp/r bs=4k skip=20 count=1 iflag=direct 2>/dev/null
cmp /tmp/r /tmp/n20 || die "write over clean line lost"
run wbpattern write /dev/mapper/w22 --region 0:4M --ops 200 --sizes 512,4K --align 512 --gen-base 10 --fsync-every 200
dd if=/tmp/n20 of=/tmp/ign bs=1 count=0 2>/dev/null
run dmsetup message w22 0 drop_caches
dmsetup status w22
run dmsetup remove w22
echo "fail END"
