# breakF pc-c22 boot 1: two 2.2-form devices, each formatting its zeroed
# private cache at table load. wa: a fully fsynced stream, then a second
# stream with fsync every 10 ops cut by the power. wb: a fsynced stream,
# then `dmsetup remove` (destructor: RAM buffer + record) cut by the power.
. /wb/tests/lib.sh
SZ=$((32 * 2048))
NOTE=$((400 * 256))
run dm_create ca --table "0 $((16 * 2048)) linear $WB_CACHE 0"
run dm_create cb --table "0 $((16 * 2048)) linear $WB_CACHE $((16 * 2048))"
run dm_create ba --table "0 $SZ linear $WB_BACKING 0"
run dm_create bb --table "0 $SZ linear $WB_BACKING $SZ"
for c in ca cb; do dd if=/dev/zero of=/dev/mapper/$c bs=512 count=1 oflag=direct 2>/dev/null; done
run dm_create wa --table "0 $SZ writeboost /dev/mapper/ba /dev/mapper/ca 2 update_sb_record_interval 1"
run dm_create wb --table "0 $SZ writeboost /dev/mapper/bb /dev/mapper/cb 4 writeback_threshold 100 update_sb_record_interval 1"
run wbpattern write /dev/mapper/wa --region 0:8M --ops 300 --sizes 512,4K,64K,256K --seed 1 --fsync-every 300
run wbpattern write /dev/mapper/wb --region 0:8M --ops 300 --sizes 512,4K,64K,256K --seed 2 --fsync-every 300
wbpattern write /dev/mapper/wa --region 0:8M --ops 400 --sizes 512,4K,64K --seed 3 --gen-base 10000 --fsync-every 10 > /tmp/wa 2>&1 &
wbpattern write /dev/mapper/wb --region 0:8M --ops 200 --sizes 4K,64K --seed 4 --gen-base 20000 --fsync-every 200 > /tmp/wb 2>&1
dmsetup status wb
dmsetup remove wb &
usleep 20000
d=$(grep '^flushed' /tmp/wa | tail -1 | cut -d' ' -f2)
echo "wa:${d:-0}" > /tmp/n
dd if=/tmp/n of=$WB_BACKING bs=4k seek=$NOTE count=1 conv=sync,fsync oflag=direct 2>/dev/null
echo "notes: $(cat /tmp/n)"
wb_powercut
