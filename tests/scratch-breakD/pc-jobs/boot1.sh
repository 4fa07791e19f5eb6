# breakD: two devices sharing a small cache, 3 writer threads each with
# mostly large writes and fdatasync every 6 ops, migration on; power cut.
. /wb/tests/lib.sh
set -e
run mgr_create
run dm_create fcache --table "0 $((40 * 2048)) linear $WB_CACHE 0"
run mgr_msg format_cache_device /dev/mapper/fcache
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run dm_create b1 --table "0 $((128 * 2048)) linear $WB_BACKING 0"
run dm_create b2 --table "0 $((128 * 2048)) linear $WB_BACKING $((128 * 2048))"
run wb_create wb1 1 /dev/mapper/b1 1
run wb_create wb2 2 /dev/mapper/b2 1
run mgr_msg allow_migrate 1
for d in 1 2; do
  rec=$(( (400 + d) * 2048 ))
  echo 0 | dd of=$WB_BACKING bs=512 seek=$rec conv=sync oflag=direct 2>/dev/null
  ( wbpattern write /dev/mapper/wb$d --region 1M:48M --ops 5000 --seed 1$d \
      --sizes 512,8K,64K,72K,1M --align 512 --fsync-every 6 --jobs 3 |
    while read -r what n; do
      [ "$what" = flushed ] && echo "$n" | dd of=$WB_BACKING bs=512 seek=$rec conv=sync oflag=direct 2>/dev/null
    done ) &
done
sleep 15
wb_powercut
