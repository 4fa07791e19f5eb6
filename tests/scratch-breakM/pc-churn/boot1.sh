# Parked lines of a dead disk, power cut, resume with the disk still dead:
# measure relocation while idle and while another device writes.
. /wb/tests/lib.sh
set -e
sz=$((64 * 2048))
run small_cache_setup 32
run dm_create b8 --table "0 $sz error"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 1
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:10M --gen 1000 --seed 8
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:40M --gen 1000 --seed 9
sync
echo "dirty $(cache_dirty) relocated $(mgr_status_value nr_relocated_lines)"
wb_powercut
