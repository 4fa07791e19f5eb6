# See boot1.sh.
. /wb/tests/lib.sh
set -e
sz=$((64 * 2048))
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run dm_create b8 --table "0 $sz linear $WB_BACKING $sz"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run mgr_create
run wb_create wb8 8 /dev/mapper/b8 0
run wb_create wb9 9 /dev/mapper/b9 0
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
run timeout 60 wbpattern check /dev/mapper/wb9 --region 0:2M --ops 0 --seed 9 --initial gen:3000 || die "device 9 does not read the data it wrote and flushed before the power cut"
run mgr_msg allow_migrate 1
wait_cache_clean 120 || die "the cache never drained"
run wbpattern check /dev/mapper/b9 --region 0:2M --ops 0 --seed 9 --initial gen:3000
run wbpattern check /dev/mapper/b8 --region 0:14M --ops 0 --seed 8 --initial gen:1000
echo PASS
