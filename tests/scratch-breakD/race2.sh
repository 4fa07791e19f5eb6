# breakD: reads racing queued direct writes of the same blocks (several
# direct writes in flight, iodepth 8) must return old ('A') or new ('B')
# bytes, never the slot's stale bytes ('S', device 2's data).
# Run with --fast-bps 16777216 (so the writes queue in the disk).
. /wb/tests/lib.sh
run mgr_create
run dm_create fcache --table "0 $((24 * 2048)) linear $WB_CACHE 0"
run mgr_msg format_cache_device /dev/mapper/fcache
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run dm_create b1 --table "0 $((64 * 2048)) linear $WB_BACKING 0"
run dm_create b2 --table "0 $((128 * 2048)) linear $WB_BACKING $((64 * 2048))"
mkfill A 1048576 /tmp/A; mkfill S 1048576 /tmp/S
i=0; while [ $i -lt 16 ]; do dd if=/tmp/A of=/dev/mapper/b1 bs=1M seek=$i oflag=direct 2>/dev/null; i=$((i+1)); done
run wb_create wb1 1 /dev/mapper/b1 1
run wb_create wb2 2 /dev/mapper/b2 1
run mgr_msg allow_migrate 1
i=0; while [ $i -lt 40 ]; do dd if=/tmp/S of=/dev/mapper/wb2 bs=1M seek=$i oflag=direct 2>/dev/null; i=$((i+1)); done
mgr_msg flush_current_buffer
wait_clean 2 200
run mgr_msg allow_migrate 0
fio --name=w --filename=/dev/mapper/wb1 --direct=1 --ioengine=libaio --iodepth=8 --rw=write \
    --bs=1M --size=20M --buffer_pattern=0x42 --output=/dev/null &
wp=$!
bad=0; n=0
while kill -0 $wp 2>/dev/null; do
    k=$((n % 16))
    dd if=/dev/mapper/wb1 of=/tmp/r bs=64k count=16 skip=$((k * 16)) iflag=direct 2>/dev/null
    n=$((n+1))
    if [ "$(tr -d 'AB' < /tmp/r | wc -c)" != 0 ]; then
        bad=$((bad+1)); [ $bad -le 3 ] && { echo "MiB $k:"; sector_summary /tmp/r | cut -c1-200; }
    fi
done
wait
echo "reads: $n, with foreign bytes: $bad"
dd if=/dev/mapper/wb1 of=/tmp/r bs=1M count=16 iflag=direct 2>/dev/null
[ "$(tr -d 'B' < /tmp/r | wc -c)" = 0 ] || die "after the writes the region is not all 'B'"
[ $bad = 0 ] || die "$bad reads of device 1 returned bytes never written to it (stale slot data)"
echo "race2 OK"
