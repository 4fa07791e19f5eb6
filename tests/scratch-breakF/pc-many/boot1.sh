# breakF pc-many boot 1: 9 devices (ids 1 2 3 63 64 100 125 126 127) on
# cache 1; a fully flushed stream on each, then write-back forced while a
# second stream runs on every device at once, commit_super_block and status
# messages in a loop; the power is cut mid-way (the durable op of each
# writer saved on vda first).
. /wb/tests/lib.sh
# --- common part (the same in every boot) ---
IDS="1 2 3 63 64 100 125 126 127"
SZ=$((16 * 2048))
R=0:4M
OPS="--ops 400 --sizes 512,4K,64K,128K"
NOTE=$((400 * 256))   # 4 KiB block of vda holding the notes (past the slices)
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
mk_backs() {
    i=0
    for id in $IDS; do
        run dm_create back$id --table "0 $SZ linear $WB_BACKING $((i * SZ))"
        i=$((i + 1))
    done
}
save_notes() {  # the notes: "id:gen:durable" words, on vda
    echo "$1" > /tmp/notes
    dd if=/tmp/notes of=$WB_BACKING bs=4k seek=$NOTE count=1 conv=sync,fsync oflag=direct 2>/dev/null
}
load_notes() {
    dd if=$WB_BACKING bs=4k skip=$NOTE count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -1
}
# checkall <notes> <dev prefix> <what>
checkall() {
    for w in $1; do
        id=${w%%:*}; r=${w#*:}; g=${r%%:*}; d=${r#*:}
        wbpattern check $2$id --region $R $OPS --seed $id --gen-base $g --durable $d > /tmp/c$id 2>&1 \
            || { tail -4 /tmp/c$id; bad "$3: device $id (gen-base $g, durable $d)"; }
    done
}
# ---
mk_backs
run cache_setup
for id in $IDS; do run wb_create wb$id $id /dev/mapper/back$id 1; done
for id in $IDS; do
    wbpattern write /dev/mapper/wb$id --region $R $OPS --seed $id --gen-base 1000 --fsync-every 400 >/dev/null || bad "write 1 on $id"
done
save_notes "$(for id in $IDS; do echo -n "$id:1000:400 "; done)"
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
run mgr_msg nr_max_batched_migration 2
for id in $IDS; do
    wbpattern write /dev/mapper/wb$id --region $R $OPS --seed $id --gen-base 5000 --fsync-every 5 > /tmp/w$id 2>&1 &
done
( while :; do dmsetup message writeboost-mgr 0 commit_super_block; dmsetup status writeboost-mgr >/dev/null; for id in 1 127; do dmsetup status wb$id >/dev/null; done; done ) >/dev/null 2>&1 &
sleep 6
cat $WB_SYSFS/caches/1/last_migrated_segment_id $WB_SYSFS/caches/1/last_flushed_segment_id
n=""
for id in $IDS; do
    d=$(grep '^flushed' /tmp/w$id | tail -1 | cut -d' ' -f2)
    n="$n $id:5000:${d:-0}"
done
echo "notes: $n"
save_notes "$n"
[ $F = 0 ] || die "$F findings"
wb_powercut
