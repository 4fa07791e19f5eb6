# Random writes of mixed sizes (512 B .. 1 MiB) with an fdatasync every 40
# ops, cut at an arbitrary point. Each completed fdatasync's op number is
# recorded on the raw slow disk (sector 400 MiB) as the writer reports it.
. /wb/tests/lib.sh
set -e
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((256 * 2048))
rec=$((400 * 2048))
echo 0 | dd of=$WB_BACKING bs=512 seek=$rec conv=sync oflag=direct 2>/dev/null
run mgr_msg allow_migrate 1
( wbpattern write /dev/mapper/wb1 --region 4M:32M --ops 6000 --seed 42 \
      --sizes 512,4K,16K,64K,1M --fsync-every 40 |
  while read -r what n; do
      [ "$what" = flushed ] && echo "$n" | dd of=$WB_BACKING bs=512 seek=$rec conv=sync oflag=direct 2>/dev/null
  done ) &
sleep 5
wb_powercut
