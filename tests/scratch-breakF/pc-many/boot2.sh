# breakF pc-many boot 2: re-create every device (cache_id 0), resume: all
# bound, data at least as new as what was flushed; then write-back forced
# with commit_super_block in a loop, and the power is cut again.
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
N=$(load_notes); echo "notes: $N"
mk_backs
run mgr_create
for id in $IDS; do run wb_create wb$id $id /dev/mapper/back$id 0; done
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
dmesg | grep "resume read" | tail -2
for id in $IDS; do echo "$id: $(dmsetup status wb$id | cut -d' ' -f4-)"; done
checkall "$N" /dev/mapper/wb "after the first power cut"
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
run mgr_msg nr_max_batched_migration 1
( while :; do dmsetup message writeboost-mgr 0 commit_super_block; done ) >/dev/null 2>&1 &
sleep 3
cat $WB_SYSFS/caches/1/last_migrated_segment_id $WB_SYSFS/caches/1/last_flushed_segment_id
[ $F = 0 ] || die "$F findings"
wb_powercut
