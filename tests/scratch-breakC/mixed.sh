. /wb/tests/lib.sh
set +e
dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
dm_create b2 --table "0 $((24 * 2048)) linear $WB_BACKING 100000"
mgr_create
mgr_msg format_cache_device /dev/mapper/c22; mgr_msg switch_to 1; mgr_msg resume_cache /dev/mapper/c22
wb_create wb1 1 /dev/mapper/b22 1; echo "2013 create rc $?"
mgr_msg read_cache_threshold 4; mgr_msg write_around_mode 1
dmsetup create w22 --table "0 49152 writeboost /dev/mapper/b2 /dev/mapper/c22"; echo "2.2 on mgr's cache: rc $?"; dmesg | tail -2
dmsetup create w23 --table "0 49152 writeboost /dev/mapper/b22 $WB_CACHE"; echo "2.2 on 2013 backing: rc $?"; dmesg | tail -2
dmsetup create w24 --table "0 49152 writeboost /dev/mapper/b22 /dev/mapper/b2"; echo "2.2 over wb1's backing as backing + b2 cache: rc $?"; dmesg | tail -2
dmsetup create w25 --table "0 49152 writeboost /dev/mapper/b2 /dev/mapper/b2"; echo "same dev twice: rc $?"; dmesg | tail -2
dmsetup create w26 --table "0 49152 writeboost /dev/mapper/b2 /dev/mapper/wb1"; echo "cache on a writeboost device: rc $?"; dmesg | tail -2
dmsetup ls
# 2.2 message names on a 2013 device and vice versa
dmsetup message wb1 0 read_cache_threshold 4; dmesg | tail -1
dmsetup message wb1 0 drop_caches; dmesg | tail -1
mgr_msg nr_read_cache_cells 5000; dmesg | tail -1
mgr_msg read_cache_threshold -1; dmesg | tail -1
mgr_msg read_cache_threshold " 4"; dmesg | tail -1
mgr_msg read_cache_threshold 0x4; dmesg | tail -1
mgr_msg write_around_mode 01; echo "01 rc $?"; dmesg | tail -1
dmsetup status writeboost-mgr | grep -E "read_cache|write_around|clean"
echo "mixed END"
