# The demo: a writeboost device over the slow disk, cached by the fast disk.
. /wb/tests/lib.sh
set -e
say() { printf '\n### %s\n' "$*"; }
show() { echo "# $*"; "$@"; }
say "Disks: /dev/vda is slow (HDD-like, 200 random IOPS), /dev/vdb is fast"
show dmsetup targets
say "Create the manager, format the fast disk as cache 1 and resume it"
show dmsetup create writeboost-mgr --table "0 1 writeboost-mgr"
show dmsetup message writeboost-mgr 0 format_cache_device /dev/vdb
show dmsetup message writeboost-mgr 0 switch_to 1
show dmsetup message writeboost-mgr 0 resume_cache /dev/vdb
say "Create a writeboost device (device_id 5) over the slow disk, attached to cache 1"
size=$(blockdev --getsz /dev/vda)
show dmsetup create wbdemo --table "0 $size writeboost 5 /dev/vda 1"
dmsetup mknodes
show dmsetup table wbdemo
say "4 KiB random writes for 5 s: the raw slow disk, then through writeboost"
for dev in /dev/vda /dev/mapper/wbdemo; do
    fio --name=demo --filename=$dev --rw=randwrite --bs=4k --direct=1 --ioengine=libaio \
        --iodepth=32 --size=32M --time_based --runtime=5 --offset=0 --output=/tmp/f.out >/dev/null 2>&1
    echo "$dev: $(grep -o 'IOPS=[^,]*' /tmp/f.out | head -1)"
done
say "Status of the device and of cache 1"
show dmsetup status wbdemo
show dmsetup status writeboost-mgr
say "Write back everything (allow_migrate 1) and detach"
show dmsetup message writeboost-mgr 0 allow_migrate 1
show dmsetup message writeboost-mgr 0 flush_current_buffer
while [ "$(dmsetup status wbdemo | awk '{print $NF}')" != 0 ]; do sleep 1; done
show dmsetup status wbdemo
echo "0 $size writeboost 5 /dev/vda 0" | dmsetup load wbdemo
show dmsetup suspend wbdemo
show dmsetup resume wbdemo
show dmsetup table wbdemo
show dmsetup remove wbdemo
show dmsetup message writeboost-mgr 0 free_cache
show dmsetup remove writeboost-mgr
say "Done"
