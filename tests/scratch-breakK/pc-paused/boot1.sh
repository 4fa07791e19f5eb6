# breakK: power cut while id 7's write-back is paused (o7 holds its disk),
# id 9 active with flushed data.
. /wb/tests/lib.sh
set -e
run cache_setup
sz=$((16 * 2048))
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
dd if=/dev/zero of=/dev/mapper/b7 bs=1M count=16 oflag=direct 2>/dev/null
dd if=/dev/zero of=/dev/mapper/b9 bs=1M count=16 oflag=direct 2>/dev/null
run wb_create wb7 7 /dev/mapper/b7 1
run wb_create wb9 9 /dev/mapper/b9 1
run wbpattern fill /dev/mapper/wb7 --region 0:8M --gen 1000 --seed 7
run dm_create o7 --table "0 $sz linear /dev/mapper/b7 0"
run dmsetup remove wb7
dmesg | grep "cannot claim" || die "not paused"
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
run wbpattern fill /dev/mapper/wb9 --region 0:8M --gen 1000 --seed 9
run wbpattern write /dev/mapper/wb9 --region 0:8M --ops 500 --seed 9 --gen-base 2000
sync
sleep 2
dmesg | tail -3
wb_powercut
