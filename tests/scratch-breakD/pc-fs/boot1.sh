# breakD: ext4 on writeboost, large files written and fsynced (direct
# writes), power cut; boot 2: fsck clean and fsynced files intact.
. /wb/tests/lib.sh
set -e
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((256 * 2048))
run mkfs.ext4 -q -F /dev/mapper/wb1
mkdir -p /mnt; run mount /dev/mapper/wb1 /mnt
run mgr_msg allow_migrate 1
i=0
dd if=/dev/urandom of=/tmp/r bs=1M count=4 2>/dev/null
rec=$((400 * 2048))
echo 0 | dd of=$WB_BACKING bs=512 seek=$rec conv=sync oflag=direct 2>/dev/null
( while true; do
    i=$((i+1))
    { echo "file $i"; cat /tmp/r; echo "end $i"; } > /tmp/src
    dd if=/tmp/src of=/mnt/f$i.tmp bs=1M conv=fsync 2>/dev/null
    mv /mnt/f$i.tmp /mnt/f$i
    sync
    md5sum /mnt/f$i | cut -d' ' -f1 > /tmp/sum
    echo "$i $(cat /tmp/sum)" | dd of=$WB_BACKING bs=512 seek=$rec conv=sync oflag=direct 2>/dev/null
    [ $((i % 5)) = 0 ] && rm -f /mnt/f$((i-3))
  done ) &
sleep 20
wb_powercut
