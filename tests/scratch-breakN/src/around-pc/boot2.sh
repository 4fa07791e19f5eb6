# See boot1.sh. Resume with the disks still dead: device 9's writes must be
# there; then more around writes; heal; drain; everything checks.
. /wb/tests/lib.sh
. /wb/tests/scratch-breakN/common.sh
set -e
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run dm_create b7 --table "0 $sz error"
run dm_create b8 --table "0 $sz error"
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
n=$(getrec 0); echo "durable ops: $n"
st "resumed"
run timeout 120 wbpattern check /dev/mapper/wb9 --region 0:8M --ops 200 --seed 99 --gen-base 10000 --initial gen:500 --durable $n
run mgr_msg allow_migrate 1
t0=$(date +%s); rc=0
timeout 200 wbpattern write /dev/mapper/wb9 --region 0:8M --ops 100 --seed 98 --gen-base 20000 --fsync-every 10 > /tmp/w9 2>&1 || rc=$?
st "dev9 write 2 rc=$rc t=$(( $(date +%s) - t0 ))"
tail -2 /tmp/w9
[ $rc = 0 ] || die "device 9's writes after the cut failed rc=$rc"
run timeout 120 wbpattern check /dev/mapper/wb9 --region 0:8M --ops 100 --seed 98 --gen-base 20000 --durable 100
cp /dev/null /tmp/x
read_blocks /dev/mapper/wb9 0 2048 /tmp/before
run heal_disk b7 0
run heal_disk b8 $sz
wait_cache_clean 180 || die "never drained"
st "drained"
read_blocks /dev/mapper/wb9 0 2048 /tmp/after
cmp -s /tmp/before /tmp/after || die "device 9 changed after the drain: $(cmp /tmp/before /tmp/after | head -1)"
read_blocks /dev/mapper/b9 0 2048 /tmp/after
cmp -s /tmp/before /tmp/after || die "device 9's disk differs after the drain: $(cmp /tmp/before /tmp/after | head -1)"
run wbpattern check /dev/mapper/b7 --region 0:14M --ops 0 --initial gen:1000 --seed 7
run wbpattern check /dev/mapper/b8 --region 0:14M --ops 0 --initial gen:1000 --seed 8
run timeout 60 wbpattern write /dev/mapper/wb9 --region 0:8M --ops 200 --sizes 4K --seed 97 --gen-base 30000
d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches)
echo "dev9 dirty after drain writes: $d9"
[ "$d9" -gt 0 ] || die "caching did not resume for device 9"
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
# Device 8's disk dies again with lines of device 9 cached: cut, boot 3
# checks device 9 is exactly what it was (around data + cached data).
run timeout 60 wbpattern write /dev/mapper/wb8 --region 0:2M --ops 100 --sizes 4K --seed 88 --gen-base 40000
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
read_blocks /dev/mapper/wb9 0 2048 /tmp/final
putrec 4 "$(md5sum < /tmp/final | cut -d' ' -f1)"
echo "boot2 md5 $(getrec 4)"
wb_powercut
