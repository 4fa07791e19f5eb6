. /wb/tests/lib.sh
set -e
cat /sys/block/vda/queue/write_cache
fl() { awk '{print $16}' /sys/block/vda/stat; }
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 2 write_around_mode 1"
a=$(fl)
run dd if=/dev/urandom of=/dev/mapper/w22 bs=4k seek=10 count=4 oflag=direct 2>/dev/null
b=$(fl)
run dd if=/dev/urandom of=/dev/mapper/w22 bs=4k seek=20 count=4 oflag=direct conv=fsync 2>/dev/null
c=$(fl)
echo "2.2 wa: flushes before $a, after plain write $b, after write+fsync $c"
[ "$c" -gt "$b" ] || echo "BUG: fsync after write-around did not flush the backing disk"
run dmsetup remove w22
# 2013 form
run mgr_create
run mgr_msg format_cache_device /dev/mapper/c22
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/c22
run wb_create wb1 1 /dev/mapper/b22 1
run mgr_msg write_around_mode 1
a=$(fl)
run dd if=/dev/urandom of=/dev/mapper/wb1 bs=4k seek=10 count=4 oflag=direct 2>/dev/null
b=$(fl)
run dd if=/dev/urandom of=/dev/mapper/wb1 bs=4k seek=20 count=4 oflag=direct conv=fsync 2>/dev/null
c=$(fl)
echo "2013 wa: flushes before $a, after plain write $b, after write+fsync $c"
[ "$c" -gt "$b" ] || echo "BUG: fsync after write-around did not flush the backing disk (2013)"
# toggle off, fsync again right after a write-around write (passthrough kept)
run dd if=/dev/urandom of=/dev/mapper/wb1 bs=4k seek=30 count=4 oflag=direct 2>/dev/null
run mgr_msg write_around_mode 0
b=$(fl)
run sh -c "dd if=/dev/urandom of=/dev/mapper/wb1 bs=4k seek=40 count=1 oflag=direct conv=fsync 2>/dev/null"
c=$(fl)
echo "2013 after toggle off: $b -> $c"
[ "$c" -gt "$b" ] || echo "BUG: fsync after toggling write-around off did not flush the backing disk"
echo "flushcnt END"
