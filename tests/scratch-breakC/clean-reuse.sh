# breakC: clean lines left in a private cache after a clean remove must not
# shadow data written to the backing disk directly afterwards.
. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
run wbpattern fill /dev/mapper/b22 --region 0:4M --gen 1
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 4 writeback_threshold 0 read_cache_threshold 4"
run fio --name=rr --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=0 --size=4M --direct=1 --ioengine=psync --randrepeat=1 --output=/dev/null
run dd if=/dev/urandom of=/dev/mapper/w22 bs=4k seek=2000 count=4 oflag=direct 2>/dev/null
dmsetup status w22
run dmsetup message w22 0 drop_caches
dmsetup status w22
run dmsetup remove w22
echo "--- tools on the cache with clean lines"
writeboost-dump /dev/mapper/c22 | head -20 || true
writeboost-check /dev/mapper/c22; echo "check rc $?"
writeboost-recover --dry-run --map 1=/dev/mapper/b22 /dev/mapper/c22; echo "recover dry rc $?"
writeboost-recover --dry-run --json --map 1=/dev/mapper/b22 /dev/mapper/c22; echo "recover dry json rc $?"
# The admin uses the backing disk directly now.
run wbpattern fill /dev/mapper/b22 --region 0:4M --gen 7
writeboost-recover --map 1=/dev/mapper/b22 /dev/mapper/c22; echo "recover rc $?"
run wbpattern check /dev/mapper/b22 --region 0:4M --ops 0 --initial gen:7
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 2 read_cache_threshold 4"
dmsetup status w22
wbpattern check /dev/mapper/w22 --region 0:4M --ops 0 --initial gen:7 || die "clean lines shadow newer backing data after a clean remove"
run dmsetup remove w22
echo "--- 2013 form: v3 image on vdc"
run dm_create b3 --table "0 20480 linear $WB_BACKING 60000"
run mgr_create
mgr_msg resume_cache /dev/vdc; echo "resume rc $?"
dmsetup status writeboost-mgr | grep -E "segment_header|read_cache|write_around|version" || true
mgr_msg switch_to 1 || true
mgr_msg read_cache_threshold 4 && echo "BUG? read cache accepted on v3"; dmesg | tail -2
mgr_msg nr_read_cache_cells 5 && echo "nr_read_cache_cells accepted on v3 (value now $(mgr_status_value nr_read_cache_cells))"; dmesg | tail -1
mgr_msg read_cache_threshold 200; dmesg | tail -1
mgr_msg write_around_mode 2; dmesg | tail -1
mgr_msg write_around_mode 1; echo "wa rc $?"
dmsetup status writeboost-mgr
echo "brk-scratch END"
