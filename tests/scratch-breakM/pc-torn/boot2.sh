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
    dmesg | tail -n +$((m+1)) | grep -i "cache 1" | grep -v "resume read" | head -8
    run wb_set_cache wb1 1
    run mgr_msg allow_migrate 1
}
md5A() { dd if=/dev/mapper/wb1 bs=1M count=64 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1; }
heavy() { # genbase
    ( wbpattern write /dev/mapper/wb1 --region 0:64M --ops 200000 --seed 1 --gen-base $1 --sizes 4K,64K,512K --fsync-every 10 --jobs 4 |
      while read -r what n; do [ "$what" = flushed ] && putrec 0 "$n"; done ) &
    fio --name=bg --filename=/dev/mapper/wb1 --offset=128M --size=64M --rw=randwrite --bs=4k,128k \
        --direct=1 --ioengine=libaio --iodepth=32 --time_based --runtime=120 >/dev/null 2>&1 &
}
light() { # genbase
    ( wbpattern write /dev/mapper/wb1 --region 64M:32M --ops 200000 --seed 2 --gen-base $1 --sizes 4K --fsync-every 1 |
      while read -r what n; do [ "$what" = flushed ] && putrec 2 "$n"; done ) &
}
chkA() { run wbpattern check /dev/mapper/wb1 --region 0:64M --ops 200000 --seed 1 --gen-base $1 --sizes 4K,64K,512K --jobs 4 --durable $(getrec 0) --initial any; }
chkB() { run wbpattern check /dev/mapper/wb1 --region 64M:32M --ops 200000 --seed 2 --gen-base $1 --sizes 4K --durable $(getrec 2) --initial any; }
resume
chkA 10000
h=$(md5A); putrec 4 "$h"
light 50000
sleep 5
wb_powercut
