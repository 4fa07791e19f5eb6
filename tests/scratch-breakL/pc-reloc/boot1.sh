# breakL B: power cut in the middle of heavy relocation. Id 7's write-back
# is paused (o7 holds its disk) with 20 MiB of a 32 MiB cache; id 9 writes
# random 4K/64K with an fdatasync every 20 ops; the cut comes mid-stream.
. /wb/tests/lib.sh
set -e
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run mgr_create
run mgr_msg format_cache_device /dev/mapper/cdev
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
sz=$((64 * 2048))
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run dd if=/dev/zero of=/dev/mapper/b7 bs=1M count=20 oflag=direct 2>/dev/null
run wb_create wb7 7 /dev/mapper/b7 1
run wb_create wb9 9 /dev/mapper/b9 1
run wbpattern fill /dev/mapper/wb7 --region 0:20M --gen 1000 --seed 7
run dd if=/dev/zero of=/dev/mapper/wb7 bs=4k count=0 conv=fsync
run dm_create o7 --table "0 $sz linear /dev/mapper/b7 0"
run dmsetup remove wb7
dmesg | grep -q "cannot claim backing device" || die "not paused"
run mgr_msg allow_migrate 1
run timeout 200 wbpattern fill /dev/mapper/wb9 --region 0:48M --gen 1000 --seed 9
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync
echo "relocated after fill: $(mgr_status_value nr_relocated_lines)"
rec=$((400 * 2048))
echo 0 | dd of=$WB_BACKING bs=512 seek=$rec conv=sync oflag=direct 2>/dev/null
( wbpattern write /dev/mapper/wb9 --region 0:48M --ops 40000 --sizes 4K,64K --seed 9 --gen-base 2000 --fsync-every 20 |
  while read -r what n; do
      [ "$what" = flushed ] && echo "$n" | dd of=$WB_BACKING bs=512 seek=$rec conv=sync oflag=direct 2>/dev/null
  done ) &
sleep ${CUT_AFTER:-12}
echo "relocated at cut: $(mgr_status_value nr_relocated_lines)"
echo "durable at cut: $(dd if=$WB_BACKING bs=512 skip=$rec count=1 iflag=direct 2>/dev/null | tr -d '\000')"
wb_powercut
