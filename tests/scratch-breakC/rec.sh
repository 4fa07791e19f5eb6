. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
T="0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 2 read_cache_threshold 4"
run dm_create w22 --table "$T"
run wbpattern fill /dev/mapper/w22 --region 0:3M --gen 3
run dd if=/dev/mapper/w22 of=/dev/null bs=4k skip=2000 count=1 iflag=direct
run dmsetup remove w22
writeboost-dump /dev/mapper/c22 --segments none
set +e
for blk in 1 2; do
  dd if=/dev/mapper/c22 of=/tmp/save$blk bs=4k skip=$blk count=1 2>/dev/null
  dd if=/dev/urandom of=/dev/mapper/c22 bs=4k seek=$blk count=1 oflag=direct 2>/dev/null
  dmsetup create w22 --table "$T"; echo "create with record block $blk garbage: rc $?"; dmesg | tail -3
  dmsetup mknodes w22 2>/dev/null
  [ -b /dev/mapper/w22 ] && { wbpattern check /dev/mapper/w22 --region 0:3M --ops 0 --initial gen:3 | tail -1; dmsetup remove w22; }
  dd if=/tmp/save$blk of=/dev/mapper/c22 bs=4k seek=$blk count=1 oflag=direct 2>/dev/null
done
dd if=/dev/urandom of=/dev/mapper/c22 bs=4k seek=1 count=2 oflag=direct 2>/dev/null
dmsetup create w22 --table "$T"; echo "create with both records garbage: rc $?"; dmesg | tail -3
dmsetup info w22 >/dev/null 2>&1 && echo "BUG: device left"
# superblock garbage (not zero)
dd if=/dev/urandom of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
dmsetup create w22 --table "$T"; echo "create with garbage superblock: rc $?"; dmesg | tail -2
# mgr path with the same
run mgr_create
mgr_msg switch_to 1; mgr_msg resume_cache /dev/mapper/c22; echo "mgr resume garbage sb rc $?"; dmesg | tail -2
echo "rec END"
