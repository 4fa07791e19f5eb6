# breakD: the cache device fails during a direct write (EIO). Afterwards
# (device back), device 1's block must read its old data or the new data,
# never the slot's stale bytes; earlier flushed data must be intact.
. /wb/tests/lib.sh
csize=$((24 * 2048))
run mgr_create
run dm_create fcache --table "0 $csize linear $WB_CACHE 0"
run mgr_msg format_cache_device /dev/mapper/fcache
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/fcache
run dm_create b1 --table "0 $((64 * 2048)) linear $WB_BACKING 0"
run dm_create b2 --table "0 $((128 * 2048)) linear $WB_BACKING $((64 * 2048))"
mkfill A 1048576 /tmp/A; mkfill B 1048576 /tmp/B; mkfill S 1048576 /tmp/S; mkfill C 4096 /tmp/C
run dd if=/tmp/A of=/dev/mapper/b1 bs=1M count=1 oflag=direct
run wb_create wb1 1 /dev/mapper/b1 1
run wb_create wb2 2 /dev/mapper/b2 1
run mgr_msg allow_migrate 1
i=0; while [ $i -lt 40 ]; do dd if=/tmp/S of=/dev/mapper/wb2 bs=1M seek=$i oflag=direct 2>/dev/null; i=$((i+1)); done
mgr_msg flush_current_buffer
wait_clean 2 200
run mgr_msg allow_migrate 0
# flushed small write on device 1 at 8 MiB
run dd if=/tmp/C of=/dev/mapper/wb1 bs=4k seek=2048 oflag=direct conv=fsync
echo "0 $csize error" | dmsetup load fcache
run dmsetup suspend --noflush fcache
run dmsetup resume fcache
if dd if=/tmp/B of=/dev/mapper/wb1 bs=1M count=1 oflag=direct 2>/dev/null; then echo "direct write succeeded?"; fi
sleep 2
echo "0 $csize linear $WB_CACHE 0" | dmsetup load fcache
run dmsetup suspend --noflush fcache
run dmsetup resume fcache
dmesg | tail -8
dmsetup status writeboost-mgr | head -20
F=0
dd if=/dev/mapper/wb1 of=/tmp/r bs=1M count=1 iflag=direct 2>/dev/null || echo "read failed (rc $?)"
sector_summary /tmp/r | cut -c1-300
w=$(tr -d 'AB' < /tmp/r | wc -c); [ "$w" = 0 ] || { echo "FINDING: block reads foreign bytes after failed direct write"; F=1; }
dd if=/dev/mapper/wb1 of=/tmp/r bs=4k skip=2048 count=1 iflag=direct 2>/dev/null || echo "read C failed"
cmp -s /tmp/r /tmp/C || { echo "FINDING: flushed 4K lost"; F=1; }
dmsetup remove wb1; dmsetup remove wb2
mgr_msg free_cache; echo "free_cache rc $?"
dmesg | tail -5
[ $F = 0 ] || die findings
echo "fail-read OK"
