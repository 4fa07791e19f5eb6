# breakD: mixed large/small/unaligned writes, concurrent jobs, checks at
# every stage (open segment, after flush, after re-resume, after write-back).
. /wb/tests/lib.sh
FAILS=0
bad() { echo "FINDING: $*"; FAILS=$((FAILS+1)); }
run cache_setup
size=$((512 * 2048))
run wb_create wb1 1 $WB_BACKING 1 $size
P="--region 1M:64M --ops 3000 --seed 7 --sizes 512,4K,12K,64K,66048,130560,1M --align 512"
run wbpattern write /dev/mapper/wb1 $P
wbpattern check /dev/mapper/wb1 $P --initial zero || bad "P1 check open segments"
writeboost-dump $WB_CACHE | head -12
mgr_msg flush_current_buffer
wbpattern check /dev/mapper/wb1 $P --initial zero || bad "P1 check after flush"
# concurrent: 4 jobs
Q="--region 80M:64M --ops 4000 --seed 9 --sizes 4K,64K,68K,256K,1M --align 4K --jobs 4"
run wbpattern write /dev/mapper/wb1 $Q
wbpattern check /dev/mapper/wb1 $Q --initial zero || bad "Q check jobs 4"
# fio verify with several jobs, large+small mixes
fio --name=v --filename=/dev/mapper/wb1 --direct=1 --ioengine=libaio --iodepth=16 --rw=randwrite \
    --bssplit=4k/30:64k/30:128k/20:1m/20 --size=64M --offset=160M --numjobs=1 --verify=crc32c \
    --verify_fatal=1 --do_verify=1 --randrepeat=1 --output-format=terse >/tmp/fio1 2>&1 || { cat /tmp/fio1; bad "fio verify1"; }
# fio: 4 jobs disjoint offsets, rw mix with reads of other blocks racing
fio --name=w --filename=/dev/mapper/wb1 --direct=1 --ioengine=libaio --iodepth=8 --rw=randwrite \
    --bssplit=8k/30:64k/40:512k/30 --size=16M --offset=240M --offset_increment=16M --numjobs=4 --verify=md5 \
    --verify_fatal=1 --do_verify=1 --output-format=terse >/tmp/fio2 2>&1 &
fp=$!
fio --name=r --filename=/dev/mapper/wb1 --direct=1 --ioengine=libaio --iodepth=8 --rw=randread \
    --bs=4k --size=64M --offset=1M --runtime=20 --time_based --output-format=terse >/tmp/fio3 2>&1 &
wait $fp || { tail -20 /tmp/fio2; bad "fio verify2 (4 jobs)"; }
wait
wbpattern check /dev/mapper/wb1 $P --initial zero || bad "P1 after fio"
wbpattern check /dev/mapper/wb1 $Q --initial zero || bad "Q after fio"
# re-resume
run dmsetup remove wb1
run mgr_msg switch_to 1
run mgr_msg free_cache
writeboost-check $WB_CACHE || bad "writeboost-check"
writeboost-dump $WB_CACHE | head -8
run wb_create wb1 1 $WB_BACKING 0 $size
run mgr_msg resume_cache $WB_CACHE
run wb_set_cache wb1 1
wbpattern check /dev/mapper/wb1 $P --initial zero || bad "P1 after resume"
wbpattern check /dev/mapper/wb1 $Q --initial zero || bad "Q after resume"
fio --name=v --filename=/dev/mapper/wb1 --direct=1 --ioengine=libaio --iodepth=16 --rw=randwrite \
    --bssplit=4k/30:64k/30:128k/20:1m/20 --size=64M --offset=160M --verify=crc32c --verify_only=1 \
    --verify_fatal=1 --randrepeat=1 >/tmp/fio4 2>&1 || { tail -20 /tmp/fio4; bad "fio verify_only after resume"; }
# write-back
run mgr_msg allow_migrate 1
wait_clean 1 300
wbpattern check $WB_BACKING $P --initial zero || bad "P1 on backing"
wbpattern check $WB_BACKING $Q --initial zero || bad "Q on backing"
dmesg | grep -iE "warn|bug|err" | tail
[ $FAILS = 0 ] || die "$FAILS findings"
echo "mix OK"
