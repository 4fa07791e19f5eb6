# See boot1.sh: after the cut, device 9 reads what it read before it.
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
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b8 --table "0 $sz linear $WB_BACKING $sz"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run mgr_create
run wb_create wb7 7 /dev/mapper/b7 0
run wb_create wb8 8 /dev/mapper/b8 0
run wb_create wb9 9 /dev/mapper/b9 0
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
run wb_set_cache wb7 1
run wb_set_cache wb8 1
run wb_set_cache wb9 1
st "resumed"
read_blocks /dev/mapper/wb9 0 2048 /tmp/final
m=$(md5sum < /tmp/final | cut -d' ' -f1)
echo "md5 now $m, before the cut $(getrec 4)"
[ "$m" = "$(getrec 4)" ] || die "device 9 changed across the cut"
run mgr_msg allow_migrate 1
wait_cache_clean 120 || die "never drained"
read_blocks /dev/mapper/b9 0 2048 /tmp/final
[ "$(md5sum < /tmp/final | cut -d' ' -f1)" = "$(getrec 4)" ] || die "device 9's disk differs after the drain"
run timeout 60 wbpattern check /dev/mapper/wb8 --region 0:2M --ops 100 --sizes 4K --seed 88 --gen-base 40000
echo "around-pc: OK"
