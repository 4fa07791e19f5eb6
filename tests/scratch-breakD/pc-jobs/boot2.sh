. /wb/tests/lib.sh
set -e
run dm_create fcache --table "0 $((40 * 2048)) linear $WB_CACHE 0"
run dm_create b1 --table "0 $((128 * 2048)) linear $WB_BACKING 0"
run dm_create b2 --table "0 $((128 * 2048)) linear $WB_BACKING $((128 * 2048))"
run writeboost-check /dev/mapper/fcache
run mgr_create
run wb_create wb1 1 /dev/mapper/b1 0
run wb_create wb2 2 /dev/mapper/b2 0
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run wb_set_cache wb1 1
run wb_set_cache wb2 1
for d in 1 2; do
  n=$(dd if=$WB_BACKING bs=512 skip=$(( (400 + d) * 2048 )) count=1 iflag=direct 2>/dev/null | tr -d '\000')
  echo "device $d durable $n"
  [ -n "$n" ] && [ "$n" -ge 6 ] || die "no progress on $d"
  run wbpattern check /dev/mapper/wb$d --region 1M:48M --ops 5000 --seed 1$d \
      --sizes 512,8K,64K,72K,1M --align 512 --jobs 3 --durable $n --initial zero
done
echo "pc-jobs OK"
