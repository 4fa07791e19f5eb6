# XFS on a dm-writeboost 2.2-form device: a dbench-like workload (files
# created, appended, renamed, deleted, fsynced, with the log wrapping many
# times over a 12 MiB private cache, so urgent write-back runs all along),
# then `xfs_repair -n` must find nothing wrong: on the device after a plain
# remove and a replay of the private cache, and on the bare backing disk
# after drop_caches and remove. The surviving files' checksums are checked
# each time.
. /wb/tests/lib.sh
set -e

run dm_create c22x --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22x --table "0 $((320 * 2048)) linear $WB_BACKING 0"
CD=/dev/mapper/c22x
BD=/dev/mapper/b22x
sz=$((320 * 2048))
run dd if=/dev/zero of=$CD bs=512 count=1 oflag=direct 2>/dev/null
table="0 $sz writeboost $BD $CD 4 writeback_threshold 0 sync_data_interval 1"
run dm_create wx --table "$table"
D=/dev/mapper/wx
run mkfs.xfs -q -f $D
mkdir -p /mnt/x
run mount -t xfs $D /mnt/x

# The workload: rounds of creates (1 to 64 KiB), appends, renames, deletes
# and fsyncs over a few directories.
i=0
for round in 1 2 3 4; do
    for dir in a b c; do
        mkdir -p /mnt/x/$dir
        n=0
        while [ $n -lt 40 ]; do
            i=$((i + 1)); n=$((n + 1))
            kb=$(( (i * 37) % 64 + 1 ))
            dd if=/dev/urandom of=/mnt/x/$dir/f$i bs=1k count=$kb 2>/dev/null
            [ $((i % 3)) = 0 ] && dd if=/dev/urandom bs=512 count=3 2>/dev/null >> /mnt/x/$dir/f$((i - 1))
            [ $((i % 5)) = 0 ] && mv /mnt/x/$dir/f$((i - 2)) /mnt/x/$dir/r$i 2>/dev/null
            [ $((i % 7)) = 0 ] && rm -f /mnt/x/$dir/f$((i - 4))
            [ $((i % 11)) = 0 ] && sync /mnt/x/$dir/f$i
        done
    done
    rm -rf /mnt/x/$(echo a b c | cut -d' ' -f$(( round % 3 + 1 )))/f1*
    sync
done
(cd /mnt/x && find . -type f | sort | xargs md5sum) > /tmp/sums
nfiles=$(wc -l < /tmp/sums)
echo "files: $nfiles"
[ "$nfiles" -gt 200 ] || die "workload left only $nfiles files"
run umount /mnt/x
echo "status after the workload: $(dmsetup status wx)"

# 1. A plain remove keeps the dirty data in the cache; the same table
# replays it.
run dmsetup remove wx
run dm_create wx --table "$table"
dirty=$(dmsetup status wx | awk '{print $10}')
echo "dirty lines after replay: $dirty"
run xfs_repair -n $D
run mount -t xfs $D /mnt/x
(cd /mnt/x && md5sum -c -s /tmp/sums) || die "files differ after the replay"
run umount /mnt/x

# 2. drop_caches puts everything on the backing disk: it alone is a clean
# file system with the same files.
run dmsetup message wx 0 drop_caches
assert_eq "$(dmsetup status wx | awk '{print $10}')" 0 "dirty lines after drop_caches"
run dmsetup remove wx
run xfs_repair -n $BD
run mount -t xfs -o ro $BD /mnt/x
(cd /mnt/x && md5sum -c -s /tmp/sums) || die "files on the bare backing disk differ"
run umount /mnt/x
run dmsetup remove b22x
run dmsetup remove c22x
echo "compat22-xfs OK"
