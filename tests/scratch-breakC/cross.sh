. /wb/tests/lib.sh
set +e
dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
dm_create b3 --table "0 $((24 * 2048)) linear $WB_BACKING 200000"
wbpattern fill /dev/mapper/b3 --region 0:2M --gen 9
mgr_create
mgr_msg format_cache_device /dev/mapper/c22; mgr_msg switch_to 1; mgr_msg resume_cache /dev/mapper/c22
mgr_msg allow_migrate 0
wb_create wb1 1 /dev/mapper/b22 1
wbpattern fill /dev/mapper/wb1 --region 0:2M --gen 4
cat $WB_SYSFS/devices/1/nr_dirty_caches
dmsetup remove wb1; mgr_msg free_cache; dmesg | tail -2
dmsetup create w24 --table "0 49152 writeboost /dev/mapper/b3 /dev/mapper/c22"; echo "2.2 over a different disk on a 2013 cache with dirty data: rc $?"; dmesg | tail -3
dmsetup mknodes w24
if dmsetup info w24 >/dev/null 2>&1; then
  dmsetup status w24
  wbpattern check /dev/mapper/w24 --region 0:2M --ops 0 --initial gen:9 | tail -1
  dmsetup message w24 0 drop_caches
  wbpattern check /dev/mapper/b3 --region 0:2M --ops 0 --initial gen:9 | tail -1 
  echo "PROBLEM: accepted"
fi
dmsetup create w25 --table "0 49152 writeboost /dev/mapper/b22 /dev/mapper/c22"; echo "2.2 over the same disk on a 2013 cache: rc $?"; dmesg | tail -3
echo "cross END"
