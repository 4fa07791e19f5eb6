. /wb/tests/lib.sh
set +e
dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
dm_create b2 --table "0 $((24 * 2048)) linear $WB_BACKING 100000"
dm_create b3 --table "0 $((24 * 2048)) linear $WB_BACKING 200000"
mgr_create
mgr_msg format_cache_device /dev/mapper/c22; mgr_msg switch_to 1; mgr_msg resume_cache /dev/mapper/c22
dmsetup create w22 --table "0 49152 writeboost /dev/mapper/b2 $WB_CACHE"; echo "2.2 private cache on vdb under the mgr's c22: rc $?"; dmesg | tail -3
dmsetup info w22 >/dev/null 2>&1 && echo "NOT REFUSED: 2.2 cache aliasing the mgr's cache device accepted"
dmsetup remove w22 2>/dev/null
# two 2.2 devices: one private cache on c22b (linear over vdb region), other on vdb
mgr_msg free_cache
dm_create c23 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
dd if=/dev/zero of=/dev/mapper/c23 bs=512 count=1 oflag=direct 2>/dev/null
dmsetup create w23 --table "0 49152 writeboost /dev/mapper/b2 /dev/mapper/c23"; echo "w23 rc $?"
dmsetup create w24 --table "0 49152 writeboost /dev/mapper/b3 /dev/mapper/c22"; echo "w24 on another linear over the same vdb range: rc $?"; dmesg | tail -3
dmsetup info w24 >/dev/null 2>&1 && echo "NOT REFUSED: two private caches on the same blocks"
echo "alias END"
