# Change 2 without a power cut: device 8 over a dead disk scatters parked
# lines through a 31-segment cache (read caching on), device 9 healthy.
# Phase A: device 9 only reads (read caching stages clean lines): do
# relocations run for readers? Phase B: device 9 writes with fsync every 50:
# worst stall, relocations per written line. Phase C: heal, drain, check.
. /wb/tests/lib.sh
. /wb/tests/scratch-breakN/common.sh
set -e
w9() { wbpattern write /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 9 --gen-base $1 --fsync-every 50 | while read -r what n; do [ "$what" = flushed ] && putrec 0 "$n"; done; }
w8() { wbpattern write /dev/mapper/wb8 --region 0:8M --ops 100000 --sizes 4K,16K --seed 8 --gen-base $1 --fsync-every 50 | while read -r what n; do [ "$what" = flushed ] && putrec 2 "$n"; done; }
run small_cache_setup 32
run mgr_msg read_cache_threshold 4
run dm_create b8 --table "0 $sz error"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 1
putrec 0 0; putrec 2 0
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:8M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync
w9 10000 & p9=$!
w8 500000 & p8=$!
sleep 15
kill $p9 $p8 2>/dev/null || true
sleep 2
pkill_wb() { for p in $(pidof wbpattern); do kill $p; done; }
pkill_wb; sleep 2
n9a=$(getrec 0); n8=$(getrec 2)
st "after scatter: w9 flushed $n9a w8 flushed $n8"
# Phase A: reads only.
r0=$(mgr_status_value nr_relocated_lines); s0=$(cache_value 1 last_migrated_segment_id)
( end=$(( $(date +%s) + 15 )); while [ $(date +%s) -lt $end ]; do
    b=$(awk -v s=$RANDOM 'BEGIN{srand(s); print int(rand()*15000)}')
    dd if=/dev/mapper/wb9 of=/dev/null bs=64k skip=$((b / 16)) count=4 iflag=direct 2>/dev/null; done )
r1=$(mgr_status_value nr_relocated_lines)
st "phase A (reads only, 15 s): relocated $((r1 - r0)) lines"
[ $((r1 - r0)) -le 2000 ] || echo "FINDING: $((r1 - r0)) parked lines moved in 15 s while device 9 only read"
sleep 5
r2=$(mgr_status_value nr_relocated_lines)
st "idle 5 s: relocated $((r2 - r1))"
# Phase B: writes.
m=$(dmesg | wc -l)
( timeout 30 wbpattern write /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 19 --gen-base 200000 --fsync-every 50 > /tmp/w9 2>&1; echo "w9 exit $?" >> /tmp/w9 ) &
last=0; since=$(date +%s); worst=0
for i in $(seq 1 14); do
    sleep 2
    n=$(sed -n 's/^flushed //p' /tmp/w9 | tail -1); n=${n:-0}
    now=$(date +%s)
    if [ "$n" != "$last" ]; then last=$n; since=$now; fi
    [ $((now - since)) -gt $worst ] && worst=$((now - since))
    st "t=$i w9 flushed $n"
done
wait
tail -2 /tmp/w9
r3=$(mgr_status_value nr_relocated_lines)
echo "phase B: worst stall $worst s, relocated $((r3 - r2)) lines for $last ops"
[ $worst -lt 10 ] || echo "FINDING: device 9 made no progress for $worst s"
dmesg | tail -n +$((m + 1)) | grep -E "no room|EIO|error" | head -5
n9=$(sed -n 's/^flushed //p' /tmp/w9 | tail -1)
run timeout 120 wbpattern check /dev/mapper/wb9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 19 --gen-base 200000 --durable $n9 --initial any
# Phase C: heal, drain, check.
run heal_disk b8 0
wait_cache_clean 240 || die "never drained: $(cache_dirty)"
st "drained"
r4=$(mgr_status_value nr_relocated_lines)
run timeout 120 wbpattern check /dev/mapper/b8 --region 0:8M --ops 100000 --sizes 4K,16K --seed 8 --gen-base 500000 --durable $n8 --initial gen:1000
run timeout 120 wbpattern check /dev/mapper/b9 --region 0:60M --ops 100000 --sizes 4K,64K,256K --seed 19 --gen-base 200000 --durable $n9 --initial any
echo "reloc-nocut: done"
