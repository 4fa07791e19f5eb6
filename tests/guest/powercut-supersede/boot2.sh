# After the cut: re-create the devices (cache 0), resume both caches (replay)
# and check every variant through the devices; then drain, detach and check
# the backing disks. A variant passes when each block holds one of the
# versions it was given (the flushed one or a newer one), and the backing
# disk ends with what the device showed.
. /wb/tests/lib.sh
set -e
SZ1=262144
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 $SZ1
run dm_create back2 --table "0 131072 linear $WB_BACKING 262144"
run dm_create back3 --table "0 131072 linear $WB_BACKING 393216"
run dm_create c2raw --table "0 131072 linear $WB_BACKING 524288"
run wb_create wb2 2 /dev/mapper/back2 0
run wb_create wb3 3 /dev/mapper/back3 0
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
run mgr_msg switch_to 2
run mgr_msg resume_cache /dev/mapper/c2raw
mkfill A 4096 /tmp/A; mkfill B 4096 /tmp/B
mkfill A 4096 /tmp/Ab
dd if=/dev/zero bs=512 count=1 2>/dev/null | tr '\000' b | dd of=/tmp/Ab bs=512 seek=3 conv=notrunc 2>/dev/null
mkfill D $((200 * 4096)) /tmp/D200

bad=""
# fail <variant> <message>: note a failed variant, go on with the others.
fail() {
    echo "FAIL: $1: $2" >&2
    bad="$bad $1"
}
# check_all <tag> <wb1> <wb2> <wb3>: every variant through these devices
# (the writeboost devices, or the backing devices after the drain).
check_all() {
    read_blocks $2 100 1 /tmp/$1.v1
    same_as_one_of /tmp/$1.v1 /tmp/A /tmp/B ||
        fail V1/$1 "block 100 (flushed 'A', then 'B' not flushed) reads $(sector_summary /tmp/$1.v1)"
    read_blocks $2 200 1 /tmp/$1.v2
    same_as_one_of /tmp/$1.v2 /tmp/A /tmp/Ab ||
        fail V2/$1 "block 200 (flushed 'A', then 512 B 'b' at sector 3 not flushed) reads $(sector_summary /tmp/$1.v2)"
    read_blocks $3 0 100 /tmp/$1.v4
    left=$(tr -d DE < /tmp/$1.v4 | wc -c | tr -d " ")
    [ "$left" = 0 ] ||
        fail V4/$1 "device 2 blocks 0..99 (flushed 'D', then 'E' not flushed) hold $left bytes that are neither: $(sector_summary /tmp/$1.v4)"
    read_blocks $3 100 200 /tmp/$1.v4b
    cmp -s /tmp/$1.v4b /tmp/D200 ||
        fail V4/$1 "device 2 blocks 100..299 (flushed 'D') read $(sector_summary /tmp/$1.v4b)"
    read_blocks $4 300 1 /tmp/$1.v3
    for f in v1 v2 v3; do
        echo "$1 $f: $(sector_summary /tmp/$1.$f)"
    done
    same_as_one_of /tmp/$1.v3 /tmp/A /tmp/B ||
        fail V3/$1 "device 3 block 300 (flushed 'A', then 'B' in a sealed segment not yet written) reads $(sector_summary /tmp/$1.v3)"
}
check_all dev /dev/mapper/wb1 /dev/mapper/wb2 /dev/mapper/wb3

# Drain both caches, detach, and check the backing disks alone: the same
# contents the devices showed.
for c in 1 2; do
    echo 1 > $WB_SYSFS/caches/$c/allow_migrate
done
wait_clean 1 60
wait_clean 2 60
wait_clean 3 60
run wb_set_cache wb1 0
run wb_set_cache wb2 0
run wb_set_cache wb3 0
check_all back $WB_BACKING /dev/mapper/back2 /dev/mapper/back3
for f in v1 v2 v4 v4b v3; do
    cmp -s /tmp/dev.$f /tmp/back.$f || fail "$f/drain" "the backing disk after draining differs from what the device read before: $(sector_summary /tmp/back.$f) vs $(sector_summary /tmp/dev.$f)"
done
[ -z "$bad" ] || die "data lost after the power cut in:$bad"
echo "supersede power cut OK"
