# After the cut: the replay drops what the write-around writes dropped.
. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 2 write_around_mode 1"
dmesg | grep -q "formatted as a private cache" && die "the cache device was formatted again"
field() { dmsetup status w22 | awk -v n=$(($1 + 3)) '{print $n}'; }
wbpattern check /dev/mapper/w22 --region 2M:1M --ops 0 --initial gen:3 \
	|| die "flushed write-around data replaced by an older cached copy after the power cut"
assert_eq "$(field 7)" 512 "dirty lines after the replay"
run wbpattern check /dev/mapper/w22 --region 1M:1M --ops 0 --initial gen:2
run wbpattern check /dev/mapper/w22 --region 0:1M --ops 0 --initial gen:1
run wbpattern check /dev/mapper/w22 --region 3M:1M --ops 0 --initial gen:1
run dmsetup message w22 0 drop_caches
assert_eq "$(field 7)" 0 "dirty lines after drop_caches"
run wbpattern check /dev/mapper/b22 --region 2M:1M --ops 0 --initial gen:3
run wbpattern check /dev/mapper/b22 --region 0:1M --ops 0 --initial gen:1
run dmsetup remove w22 c22 b22
echo "compat22 write-around OK"
