# Change 1 across a power cut: devices 7 and 8 (disks die) fill 28 of 31
# segments with parked data; device 9 wrote 8M before (written back, record
# past it), then writes mixed sizes (512..1M, unaligned) with fsync every 10
# ops: after 30 s they go around. FLUSH must reach vda. Power cut.
. /wb/tests/lib.sh
# Shared setup for breakN scripts. Layout on $WB_BACKING (64 MiB each):
# b7 at 0, b8 at 64M, b9 at 128M, b10 at 192M; record area at 400M.
sz=$((64 * 2048))
rec=$((400 * 2048))
getrec() { dd if=$WB_BACKING bs=512 skip=$(($rec + $1)) count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -1; }
putrec() { echo "$2" | dd of=$WB_BACKING bs=512 seek=$(($rec + $1)) conv=sync,fsync oflag=direct 2>/dev/null; }
vda_flushes() { awk '{print $16}' /sys/block/vda/stat; }
kill_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz error" && dmsetup resume $1; }
heal_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz linear $WB_BACKING $2" && dmsetup resume $1; }
st() { echo "[$(date +%s)] dirty $(cache_dirty) reloc $(mgr_status_value nr_relocated_lines) rec $(mgr_status_value record_migrated_segment_id) last_mig $(cache_value 1 last_migrated_segment_id) $*"; }
set -e
run small_cache_setup 32
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b8 --table "0 $sz linear $WB_BACKING $sz"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run wb_create wb7 7 /dev/mapper/b7 1
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
putrec 0 0
# device 9: 8M through the cache, written back, record moved past it.
run mgr_msg allow_migrate 1
run timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:8M --gen 500 --seed 99
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
run wait_clean 9 120
sleep 3
st "after dev9 prefill"
run mgr_msg allow_migrate 0
run kill_disk b7
run kill_disk b8
run timeout 60 wbpattern fill /dev/mapper/wb7 --region 0:14M --gen 1000 --seed 7
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:14M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
run mgr_msg allow_migrate 1
sleep 3
st "parked"
f0=$(vda_flushes)
t0=$(date +%s)
rc=0
timeout 200 wbpattern write /dev/mapper/wb9 --region 0:8M --ops 200 --seed 99 --gen-base 10000 --fsync-every 10 > /tmp/w9 2>&1 || rc=$?
while read -r what n; do [ "$what" = flushed ] && putrec 0 "$n"; done < /tmp/w9
t=$(( $(date +%s) - t0 ))
f1=$(vda_flushes)
tail -3 /tmp/w9
st "dev9 write rc=$rc t=$t vda flushes $f0 -> $f1"
dmesg | grep -E "no room|writeback|write-back" | tail -5
[ $rc = 0 ] || die "device 9's writes failed rc=$rc"
[ $((f1 - f0)) -ge 10 ] || echo "FINDING: only $((f1 - f0)) flushes reached vda for 20 fsyncs of around writes"
run timeout 120 wbpattern check /dev/mapper/wb9 --region 0:8M --ops 200 --seed 99 --gen-base 10000 --initial gen:500 --durable 200
run timeout 120 wbpattern check /dev/mapper/b9 --region 0:8M --ops 200 --seed 99 --gen-base 10000 --initial gen:500 --durable 200
echo "durable rec: $(getrec 0)"
wb_powercut
