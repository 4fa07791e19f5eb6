# Every sector holds the data of its last write up to the last completed
# fdatasync, or of a later write: never anything older, never garbage.
. /wb/tests/lib.sh
set -e
# The offline checker agrees with what the kernel wrote (before any resume).
run writeboost-check $WB_CACHE
writeboost-dump $WB_CACHE --segments none | head -20
writeboost-dump --json $WB_CACHE --segments none > /tmp/dump.json || die "writeboost-dump --json failed"
grep -q '"format_id"' /tmp/dump.json || die "dump JSON lacks the format id"
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 $((256 * 2048))
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
d=$(dd if=$WB_BACKING bs=512 skip=$((400 * 2048)) count=1 iflag=direct 2>/dev/null | tr -d '\000')
echo "last durable op recorded: $d"
[ -n "$d" ] && [ "$d" -ge 40 ] || die "the writer made no durable progress ($d)"
run wbpattern check /dev/mapper/wb1 --region 4M:32M --ops 6000 --seed 42 \
    --sizes 512,4K,16K,64K,1M --durable "$d" --initial zero
# Drained to the backing device, the same holds there.
run mgr_msg allow_migrate 1
run mgr_msg flush_current_buffer
wait_clean 1 240
run wbpattern check $WB_BACKING --region 4M:32M --ops 6000 --seed 42 \
    --sizes 512,4K,16K,64K,1M --durable "$d" --initial zero
echo "random power cut OK"
