. /wb/tests/lib.sh
set -e
run dm_create fcache --table "0 $((24 * 2048)) linear $WB_CACHE 0"
writeboost-check /dev/mapper/fcache || echo "FINDING: writeboost-check failed"
writeboost-dump /dev/mapper/fcache | head -30
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 $((256 * 2048))
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run wb_set_cache wb1 1
d=$(dd if=$WB_BACKING bs=512 skip=$((400 * 2048)) count=1 iflag=direct 2>/dev/null | tr -d '\000')
echo "last durable op recorded: $d"
[ -n "$d" ] && [ "$d" -ge 10 ] || die "no durable progress ($d)"
run wbpattern check /dev/mapper/wb1 --region 4M:48M --ops 4000 --seed 77 \
      --sizes 512,4K,64K,66048,260K,1M --align 512 --durable "$d" --initial zero
run mgr_msg allow_migrate 1
run mgr_msg flush_current_buffer
wait_clean 1 240
run wbpattern check $WB_BACKING --region 4M:48M --ops 4000 --seed 77 \
      --sizes 512,4K,64K,66048,260K,1M --align 512 --durable "$d" --initial zero
echo "pc-direct OK"
