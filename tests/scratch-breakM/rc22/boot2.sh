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
run dm_create w22 --table "$(tab 0 0)"
n=$(getrec 0); echo "durable $n, dirty $(field 7)"
run wbpattern check /dev/mapper/w22 --region 0:16M --ops 100000 --sizes 4K,8K,32K --seed 1 --gen-base 1000 --durable $n --initial gen:1
dd if=/dev/mapper/w22 bs=1M count=16 iflag=direct 2>/dev/null | md5sum > /tmp/h1
rr 5
run dmsetup message w22 0 drop_caches
dd if=/dev/mapper/w22 bs=1M count=16 iflag=direct 2>/dev/null | md5sum > /tmp/h2
cmp /tmp/h1 /tmp/h2 || die "region changed without a write (reads + drop_caches)"
run dmsetup remove w22
run dm_create w22 --table "$(tab 0 0)"
dd if=/dev/mapper/w22 bs=1M count=16 iflag=direct 2>/dev/null | md5sum > /tmp/h3
cmp /tmp/h1 /tmp/h3 || die "region changed without a write (remove/re-create)"
dd if=/dev/mapper/b22 bs=1M count=16 iflag=direct 2>/dev/null | md5sum > /tmp/h4
cmp /tmp/h1 /tmp/h4 || die "backing differs after drop_caches"
putrec 1 "$(cut -d' ' -f1 /tmp/h1)"
# normal mode now: writes into cache, reads -> clean lines, then cut
rr 6
putrec 0 0
wr 300000 &
( while :; do rr $RANDOM; done ) &
sleep 10
echo "flushed $(getrec 0) dirty $(field 7)"
wb_powercut
