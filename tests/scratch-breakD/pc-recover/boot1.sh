# breakD: direct lines on the cache, power cut; boot 2 (no module):
# writeboost-recover writes them back; wbpattern checks the disk.
. /wb/tests/lib.sh
set -e
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((256 * 2048))
rec=$((400 * 2048))
echo 0 | dd of=$WB_BACKING bs=512 seek=$rec conv=sync oflag=direct 2>/dev/null
( wbpattern write /dev/mapper/wb1 --region 4M:64M --ops 3000 --seed 31 \
      --sizes 512,4K,64K,132K,1M --align 512 --fsync-every 7 |
  while read -r what n; do
      [ "$what" = flushed ] && echo "$n" | dd of=$WB_BACKING bs=512 seek=$rec conv=sync oflag=direct 2>/dev/null
  done ) &
sleep 8
wb_powercut
