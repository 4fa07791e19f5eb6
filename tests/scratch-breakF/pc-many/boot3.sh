# breakF pc-many boot 3: resume again after a cut mid write-back; data as
# flushed in boot 1; write everything back, detach, and check the slices.
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
for id in $IDS; do echo "$id: $(dmsetup status wb$id | cut -d' ' -f4-)"; done
checkall "$N" /dev/mapper/wb "after the second power cut"
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
for id in $IDS; do wait_clean $id 300; done
for id in $IDS; do wb_set_cache wb$id 0 || bad "detach $id"; done
for id in $IDS; do dmsetup remove wb$id || bad "remove $id"; done
checkall "$N" /dev/mapper/back "backing slices after write-back"
run mgr_msg free_cache
[ $F = 0 ] || die "$F findings"
echo "pc-many OK"
