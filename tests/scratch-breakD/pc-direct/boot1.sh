# breakD: power cut during a stream of mostly large (direct) writes with
# fdatasync every 10 ops; migration on, small cache (wraps).
. /wb/tests/lib.sh
set -e
run mgr_create
run dm_create fcache --table "0 $((24 * 2048)) linear $WB_CACHE 0"
run mgr_msg format_cache_device /dev/mapper/fcache
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run wb_create wb1 1 $WB_BACKING 1 $((256 * 2048))
rec=$((400 * 2048))
echo 0 | dd of=$WB_BACKING bs=512 seek=$rec conv=sync oflag=direct 2>/dev/null
run mgr_msg allow_migrate 1
( wbpattern write /dev/mapper/wb1 --region 4M:48M --ops 4000 --seed 77 \
      --sizes 512,4K,64K,66048,260K,1M --align 512 --fsync-every 10 |
  while read -r what n; do
      [ "$what" = flushed ] && echo "$n" | dd of=$WB_BACKING bs=512 seek=$rec conv=sync oflag=direct 2>/dev/null
  done ) &
sleep 12
wb_powercut
