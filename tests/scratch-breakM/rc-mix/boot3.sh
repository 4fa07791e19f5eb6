. /wb/tests/lib.sh
set -e
sz=$((64*2048))
run dm_create b1 --table "0 $sz linear $WB_BACKING 0"
run dm_create b2 --table "0 $sz linear $WB_BACKING $sz"
run mgr_create
run wb_create wb1 1 /dev/mapper/b1 0
run wb_create wb2 2 /dev/mapper/b2 0
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
run wb_set_cache wb1 1
run wb_set_cache wb2 1
run wbpattern check /dev/mapper/wb1 --region 0:32M --ops 1500 --sizes 4K,64K --seed 1 --gen-base 8000 --durable 1500 --initial any
run wbpattern check /dev/mapper/wb2 --region 0:4M --ops 0 --initial gen:5000 --seed 2
run wbpattern check /dev/mapper/wb2 --region 4M:12M --ops 0 --initial gen:1000 --seed 2
run wbpattern check /dev/mapper/wb2 --region 24M:4M --ops 0 --initial gen:3500 --seed 23
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
wait_cache_clean 180 || die "no drain"
run wbpattern check /dev/mapper/wb1 --region 0:32M --ops 1500 --sizes 4K,64K --seed 1 --gen-base 8000 --durable 1500 --initial any
echo "rc-mix OK"
