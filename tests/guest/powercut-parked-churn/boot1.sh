# breakM: a dead disk's parked lines scattered through the log, then a
# power cut. Boot 1: a 31-segment cache; device 8 over a dm-error disk fills
# and overwrites its 8 MiB (its lines parked, moved), device 9 writes with an
# fsync every 50 ops; power cut. Boot 2: resumed with the disk still dead;
# device 9 writes again and must keep going: no 10 s without an fsync done,
# no "no room in the log", and its data checks after the cut and after.
# The module before stalled device 9 for 30 s (the migrator moved parked
# lines at 25,000 a second while the relocation's open segment kept writers
# out, and `urgent` never cleared), then failed its writes with EIO.
. /wb/tests/lib.sh
set -e
sz=$((64 * 2048))
w9() { wbpattern write /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 9 --gen-base $1 --fsync-every 50 | while read -r what n; do [ "$what" = flushed ] && mark_put 0 "$n"; done; }
w8() { wbpattern write /dev/mapper/wb8 --region 0:8M --ops 100000 --sizes 4K,16K --seed 8 --gen-base $1 --fsync-every 50 | while read -r what n; do [ "$what" = flushed ] && mark_put 2 "$n"; done; }
run small_cache_setup 32
run mgr_msg read_cache_threshold 4
run dm_create b8 --table "0 $sz error"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 1
mark_put 0 0; mark_put 2 0
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:8M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync
echo "dirty after dev8 fill: $(cache_dirty)"
w9 10000 &
w8 500000 &
( while :; do awk -v s=$RANDOM 'BEGIN{srand(s); for(i=0;i<40;i++) print int(rand()*15000)}' | while read b; do
    dd if=/dev/mapper/wb9 of=/dev/null bs=4k skip=$b count=1 iflag=direct 2>/dev/null; done; done ) &
sleep 15
echo "w9 flushed $(mark_get 0) w8 flushed $(mark_get 2) relocated $(mgr_status_value nr_relocated_lines) dirty $(cache_dirty)"
wb_powercut
