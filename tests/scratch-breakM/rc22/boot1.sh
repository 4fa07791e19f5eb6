. /wb/tests/lib.sh
set -e
rec=$((400 * 2048))
getrec() { dd if=$WB_BACKING bs=512 skip=$(($rec + $1)) count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -1; }
putrec() { echo "$2" | dd of=$WB_BACKING bs=512 seek=$(($rec + $1)) conv=sync,fsync oflag=direct 2>/dev/null; }
run dm_create c22 --table "0 $((16 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((64 * 2048)) linear $WB_BACKING 0"
tab() { echo "0 $((64 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 6 writeback_threshold $2 read_cache_threshold 4 write_around_mode $1"; }
rr() { awk -v s=$1 'BEGIN{srand(s); for(i=0;i<300;i++) print int(rand()*4096)}' | while read b; do dd if=/dev/mapper/w22 of=/dev/null bs=4k skip=$b count=1 iflag=direct 2>/dev/null; done; }
wr() { # seed genbase
  wbpattern write /dev/mapper/w22 --region 0:16M --ops 100000 --sizes 4K,8K,32K --seed 1 --gen-base $1 --fsync-every 20 | while read -r what n; do [ "$what" = flushed ] && putrec 0 "$n"; done; }
field() { dmsetup status w22 | awk -v n=$(($1 + 3)) '{print $n}'; }
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct
run wbpattern fill /dev/mapper/b22 --region 0:16M --gen 1 --seed 1
sync
putrec 0 0
run dm_create w22 --table "$(tab 1 0)"
rr 1; echo "clean lines? dirty $(field 7)"
run dmsetup suspend w22; run dmsetup resume w22
wr 1000 &
( while :; do rr $RANDOM; done ) &
sleep 12
echo "flushed $(getrec 0) dirty $(field 7)"
wb_powercut
