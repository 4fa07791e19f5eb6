# breakD: a read of a block racing a direct write of the same block must
# return the old or the new data, never the stale bytes of the cache slot
# (another device's data). Run with a slow cache disk (--fast-bps 8388608).
. /wb/tests/lib.sh
run mgr_create
run dm_create fcache --table "0 $((24 * 2048)) linear $WB_CACHE 0"
run mgr_msg format_cache_device /dev/mapper/fcache
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run dm_create b1 --table "0 $((64 * 2048)) linear $WB_BACKING 0"
run dm_create b2 --table "0 $((128 * 2048)) linear $WB_BACKING $((64 * 2048))"
mkfill A 1048576 /tmp/A
mkfill B 1048576 /tmp/B
mkfill S 1048576 /tmp/S
run dd if=/tmp/A of=/dev/mapper/b1 bs=1M count=1 oflag=direct
run wb_create wb1 1 /dev/mapper/b1 1
run wb_create wb2 2 /dev/mapper/b2 1
run mgr_msg allow_migrate 1
# device 2 fills every slot with 'S' (its "secret" data).
i=0; while [ $i -lt 40 ]; do dd if=/tmp/S of=/dev/mapper/wb2 bs=1M seek=$i oflag=direct 2>/dev/null; i=$((i+1)); done
mgr_msg flush_current_buffer
wait_clean 2 200
( j=0; while [ $j -lt 40 ]; do
    dd if=/tmp/B of=/dev/mapper/wb1 bs=1M count=1 oflag=direct 2>/dev/null
    dd if=/tmp/S of=/dev/mapper/wb2 bs=1M seek=$((j % 40)) count=1 oflag=direct 2>/dev/null
    mgr_msg flush_current_buffer
    j=$((j+1))
  done; echo writer-done ) &
wp=$!
bad=0; n=0
while kill -0 $wp 2>/dev/null; do
    dd if=/dev/mapper/wb1 of=/tmp/r bs=1M count=1 iflag=direct 2>/dev/null
    n=$((n+1))
    w=$(tr -d 'AB' < /tmp/r | wc -c)
    if [ "$w" != 0 ]; then
        bad=$((bad+1)); [ $bad -le 3 ] && sector_summary /tmp/r
    fi
done
wait
echo "reads: $n, with foreign bytes: $bad"
[ $bad = 0 ] || die "$bad reads of device 1 returned bytes that were never written to it (stale slot data)"
echo "race-read OK"
