# Two devices share one cache with concurrent writers and readers: no
# cross-talk, per-device dirty counts, and each backing device receives
# exactly its own data after migration.
. /wb/tests/lib.sh
set -e
run cache_setup
half=$(( $(sectors_of $WB_BACKING) / 2 ))
# Two backing devices carved from the slow disk.
run dm_create back1 --table "0 $half linear $WB_BACKING 0"
run dm_create back2 --table "0 $half linear $WB_BACKING $half"
run wb_create wa 5 /dev/mapper/back1 1
run wb_create wb 6 /dev/mapper/back2 1
for d in wa wb; do
    fio --name=$d --filename=/dev/mapper/$d --direct=1 --ioengine=libaio --iodepth=16 \
        --rw=randwrite --bsrange=512-16k --size=12M --verify=crc32c --verify_fatal=1 \
        --do_verify=0 --randseed=7 --output=/tmp/$d.w &
done
wait
# Same random seed on both: identical offsets, so cross-talk would show.
for d in wa wb; do
    run fio --name=$d --filename=/dev/mapper/$d --direct=1 --ioengine=libaio --iodepth=16 \
        --rw=randwrite --bsrange=512-16k --size=12M --verify=crc32c --verify_fatal=1 \
        --verify_only --randseed=7 --output=/tmp/$d.v
done
d5=$(cat $WB_SYSFS/devices/5/nr_dirty_caches); d6=$(cat $WB_SYSFS/devices/6/nr_dirty_caches)
[ "$d5" -gt 0 ] && [ "$d6" -gt 0 ] || die "both devices should have dirty lines ($d5, $d6)"
# Different data per device now, concurrently, then migrate everything.
for d in wa wb; do
    seed=$([ $d = wa ] && echo 100 || echo 200)
    fio --name=$d --filename=/dev/mapper/$d --direct=1 --ioengine=libaio --iodepth=16 \
        --rw=randwrite --bs=4k --size=8M --offset=32M --verify=crc32c --do_verify=0 \
        --randseed=$seed --output=/tmp/$d.w2 &
done
wait
run mgr_msg allow_migrate 1
run mgr_msg flush_current_buffer
wait_clean 5
wait_clean 6
# Detach both and verify through the backing devices alone.
for d in wa wb; do
    id=$([ $d = wa ] && echo 5 || echo 6); b=$([ $d = wa ] && echo back1 || echo back2)
    seed=$([ $d = wa ] && echo 100 || echo 200)
    echo "0 $half writeboost $id /dev/mapper/$b 0" | dmsetup load $d
    run dmsetup suspend $d
    run dmsetup resume $d
    run fio --name=$d --filename=/dev/mapper/$b --direct=1 --ioengine=libaio --iodepth=16 \
        --rw=randwrite --bs=4k --size=8M --offset=32M --verify=crc32c --verify_fatal=1 \
        --verify_only --randseed=$seed --output=/tmp/$d.v2
done
echo "shared cache OK"
