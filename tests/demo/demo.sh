# The demo: a writeboost device over the slow disk, cached by the fast disk,
# set up and torn down with the admin tools (the seed's `prepare` and
# `terminate` steps), with the status before and after.
. /wb/tests/lib.sh
set -e
say() { printf '\n### %s\n' "$*"; }
show() { echo "# $*"; "$@"; }
say "Disks: /dev/vda is slow (HDD-like, 200 random IOPS), /dev/vdb is fast"
show dmsetup targets
say "Status before: module loaded, nothing set up"
show writeboost-status
say "prepare: manager, format the fast disk, a device over the slow disk, resume the cache as cache 1, attach"
show writeboost-create --mgr
show writeboost-format-cache --force /dev/vdb
show writeboost-create wbdemo 5 /dev/vda
show writeboost-resume-cache 1 /dev/vdb
show writeboost-attach 5 1
show dmsetup table wbdemo
show writeboost-daemon start
say "4 KiB random writes for 5 s: the raw slow disk, then through writeboost"
for dev in /dev/vda /dev/mapper/wbdemo; do
    fio --name=demo --filename=$dev --rw=randwrite --bs=4k --direct=1 --ioengine=libaio \
        --iodepth=32 --size=16M --time_based --runtime=5 --offset=0 --output=/tmp/f.out >/dev/null 2>&1
    echo "$dev: $(grep -o 'IOPS=[^,]*' /tmp/f.out | head -1)"
done
say "Status after the writes: dirty lines in cache 1, not yet written back"
show writeboost-status --counters
say "terminate: detach (writes everything back first), remove, free the cache, remove the manager"
show writeboost-daemon stop
show writeboost-detach 5
show writeboost-remove 5
show writeboost-free-cache 1
show writeboost-remove --mgr
say "Status after"
show writeboost-status
say "Done"
