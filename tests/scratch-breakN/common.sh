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
