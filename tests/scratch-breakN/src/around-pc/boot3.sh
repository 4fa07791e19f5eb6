# See boot1.sh: after the cut, device 9 reads what it read before it.
. /wb/tests/lib.sh
. /wb/tests/scratch-breakN/common.sh
set -e
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b8 --table "0 $sz linear $WB_BACKING $sz"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run mgr_create
run wb_create wb7 7 /dev/mapper/b7 0
run wb_create wb8 8 /dev/mapper/b8 0
run wb_create wb9 9 /dev/mapper/b9 0
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
run wb_set_cache wb7 1
run wb_set_cache wb8 1
run wb_set_cache wb9 1
st "resumed"
read_blocks /dev/mapper/wb9 0 2048 /tmp/final
m=$(md5sum < /tmp/final | cut -d' ' -f1)
echo "md5 now $m, before the cut $(getrec 4)"
[ "$m" = "$(getrec 4)" ] || die "device 9 changed across the cut"
run mgr_msg allow_migrate 1
wait_cache_clean 120 || die "never drained"
read_blocks /dev/mapper/b9 0 2048 /tmp/final
[ "$(md5sum < /tmp/final | cut -d' ' -f1)" = "$(getrec 4)" ] || die "device 9's disk differs after the drain"
run timeout 60 wbpattern check /dev/mapper/wb8 --region 0:2M --ops 100 --sizes 4K --seed 88 --gen-base 40000
echo "around-pc: OK"
