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
wbpattern check /dev/mapper/w22 --region 3M:4K --ops 1 --sizes 4K --align 4K --gen-base 100 --durable 1 \
	|| die "a FUA write-around write lost after the power cut"
assert_eq "$(field 7)" 511 "dirty lines after the replay"
run wbpattern check /dev/mapper/w22 --region 1M:1M --ops 0 --initial gen:2
run wbpattern check /dev/mapper/w22 --region 0:1M --ops 0 --initial gen:1
run wbpattern check /dev/mapper/w22 --region 6152:2040 --ops 0 --initial gen:1
run dmsetup message w22 0 drop_caches
assert_eq "$(field 7)" 0 "dirty lines after drop_caches"
run wbpattern check /dev/mapper/b22 --region 2M:1M --ops 0 --initial gen:3
run wbpattern check /dev/mapper/b22 --region 0:1M --ops 0 --initial gen:1
run dmsetup remove w22
# The 2013 form: write_around_mode is a tunable of the cache (off by
# default), shown in the manager status.
run mgr_create
run mgr_msg format_cache_device /dev/mapper/c22
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/c22
dmsetup status writeboost-mgr | grep -qx "write_around_mode: 0" || die "write_around_mode not 0 by default"
run mgr_msg write_around_mode 1
dmsetup status writeboost-mgr | grep -qx "write_around_mode: 1" || die "write_around_mode 1 not shown"
assert_eq "$(cache_value 1 write_around_mode)" 1 "sysfs write_around_mode"
run wb_create w13 1 /dev/mapper/b22 1
run wbpattern fill /dev/mapper/w13 --region 4M:1M --gen 4
assert_eq "$(cache_value 1 nr_dirty_caches)" 0 "dirty lines after 1 MiB in write-around mode"
run wbpattern check /dev/mapper/b22 --region 4M:1M --ops 0 --initial gen:4
run dmsetup remove w13
run mgr_msg free_cache
run dmsetup remove writeboost-mgr c22 b22
echo "compat22 write-around OK"
