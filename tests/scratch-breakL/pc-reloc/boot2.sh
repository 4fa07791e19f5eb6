. /wb/tests/lib.sh
set -e
since() { dmesg | tail -n +$((mark + 1)); }
ndirty() { mgr_msg switch_to 1; mgr_status_value nr_dirty_caches; }
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run writeboost-check /dev/mapper/cdev || echo "writeboost-check FAILED"
sz=$((64 * 2048))
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run dm_create o7 --table "0 $sz linear /dev/mapper/b7 0"
run mgr_create
run wb_create wb7 7 /dev/mapper/b7 0
run wb_create wb9 9 /dev/mapper/b9 0
run mgr_msg switch_to 1
mark=$(dmesg | wc -l)
run timeout 120 dmsetup message writeboost-mgr 0 resume_cache /dev/mapper/cdev
since | tail -5
d=$(dd if=$WB_BACKING bs=512 skip=$((400 * 2048)) count=1 iflag=direct 2>/dev/null | tr -d '\000')
echo "last durable op recorded: $d; dirty $(ndirty)"
[ -n "$d" ] && [ "$d" -ge 20 ] || die "no durable progress ($d)"
run wbpattern check /dev/mapper/wb7 --region 0:20M --ops 0 --initial gen:1000 --seed 7
run wbpattern check /dev/mapper/wb9 --region 0:48M --ops 40000 --sizes 4K,64K --seed 9 --gen-base 2000 --durable "$d" --initial gen:1000
# Pause id 7 again, let 9 drain, then o7 goes and 7 drains.
mark=$(dmesg | wc -l)
run dmsetup remove wb7
since | grep -q "cannot claim" || die "not paused after resume"
run mgr_msg allow_migrate 1
run mgr_msg flush_current_buffer
wait_clean 9 180
run wbpattern check /dev/mapper/b9 --region 0:48M --ops 40000 --sizes 4K,64K --seed 9 --gen-base 2000 --durable "$d" --initial gen:1000
dd if=/dev/mapper/o7 bs=1M count=20 iflag=direct 2>/dev/null | cmp -s -n $((20 << 20)) - /dev/zero || die "held disk written"
run dmsetup remove o7
i=0
until [ "$(ndirty)" = 0 ]; do i=$((i + 1)); [ $i -lt 120 ] || die "id 7 never drained: $(ndirty)"; sleep 1; done
run wbpattern check /dev/mapper/b7 --region 0:20M --ops 0 --initial gen:1000 --seed 7
echo "pc-reloc OK"
