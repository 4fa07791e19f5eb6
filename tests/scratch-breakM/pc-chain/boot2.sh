. /wb/tests/lib.sh
set -e
rec=$((400 * 2048))
getrec() { dd if=$WB_BACKING bs=512 skip=$(($rec + $1)) count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -1; }
putrec() { echo "$2" | dd of=$WB_BACKING bs=512 seek=$(($rec + $1)) conv=sync,fsync oflag=direct 2>/dev/null; }
resume() {
    run mgr_create
    run wb_create wb1 1 $WB_BACKING 0 $((256 * 2048))
    run mgr_msg switch_to 1
    m=$(dmesg | wc -l)
    run mgr_msg resume_cache $WB_CACHE
    run wb_set_cache wb1 1
    dmesg | tail -n +$((m+1)) | grep -i "cache 1" | head -8
    run mgr_msg read_cache_threshold 4
}
region_md5() { dd if=/dev/mapper/wb1 bs=1M count=64 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1; }
writer() { # seed genbase
    ( wbpattern write /dev/mapper/wb1 --region 0:64M --ops 200000 --seed $1 --gen-base $2 \
          --sizes 4K,16K,64K,256K --fsync-every 30 |
      while read -r what n; do
          [ "$what" = flushed ] && putrec 0 "$n"
      done ) &
    fio --name=bg --filename=/dev/mapper/wb1 --offset=64M --size=64M --rw=randwrite --bs=4k \
        --direct=1 --ioengine=libaio --iodepth=32 --time_based --runtime=120 >/dev/null 2>&1 &
    ( while :; do awk -v s=$RANDOM 'BEGIN{srand(s); for(i=0;i<50;i++) print int(rand()*16384)}' | while read b; do
        dd if=/dev/mapper/wb1 of=/dev/null bs=4k skip=$b count=1 iflag=direct 2>/dev/null; done; done ) &
}
resume
n=$(getrec 0); echo "durable up to op $n"
run wbpattern check /dev/mapper/wb1 --region 0:64M --ops 200000 --seed 1 --gen-base 10000 --sizes 4K,16K,64K,256K --durable $n --initial zero
h=$(region_md5); putrec 1 "$h"; echo "md5 $h"
wb_powercut
