# A table load changes nothing until the table is resumed: a loaded and
# cleared table leaves the binding as it was (free_cache then works); a
# load naming a cache attaches only at resume; a load with cache_id 0 of a
# dirty device is refused at once; a detach that the resume must refuse
# (data written after the load) fails the resume with a clear message,
# keeps the device bound and its data readable, and works when resumed
# again once clean; a device re-created over dirty data is bound to its
# cache and survives a plain suspend/resume; an empty FLUSH of a device
# bound while live (resume_cache) reaches the backing disk.
. /wb/tests/lib.sh
set -e
size=$(sectors_of $WB_BACKING)
bound() { dmsetup status "$1" | awk '{print $5}'; }
table_of() { echo "0 $size writeboost 1 $WB_BACKING $1"; }
for c in a b c d e p; do dd if=/dev/urandom of=/tmp/$c bs=4k count=16 2>/dev/null; done

run cache_setup
run wb_create wb1 1 $WB_BACKING 0

# 1. Load + clear: nothing changes, I/O of the live table passes through.
table_of 1 | run dmsetup load wb1
assert_eq "$(bound wb1)" 0 "binding after a load with cache_id 1 (not resumed)"
run dd if=/tmp/a of=/dev/mapper/wb1 bs=4k seek=100 oflag=direct 2>/dev/null
dd if=$WB_BACKING of=/tmp/r bs=4k skip=100 count=16 iflag=direct 2>/dev/null
cmp -s /tmp/a /tmp/r || die "a write of the live pass-through table did not reach the backing disk"
run dmsetup clear wb1
assert_eq "$(bound wb1)" 0 "binding after load + clear"
assert_eq "$(cat $WB_SYSFS/devices/1/cache_id)" 0 "devices/1/cache_id after load + clear"
run mgr_msg free_cache
run mgr_msg resume_cache $WB_CACHE

# 2. A load with cache_id 1 takes effect at resume, not before.
table_of 1 | run dmsetup load wb1
run dmsetup suspend wb1
assert_eq "$(bound wb1)" 0 "binding while suspended, new table not resumed"
run dmsetup resume wb1
assert_eq "$(bound wb1)" 1 "binding after the resume"
run dd if=/tmp/b of=/dev/mapper/wb1 bs=4k seek=200 oflag=direct 2>/dev/null
assert_eq "$(cat $WB_SYSFS/devices/1/nr_dirty_caches)" 16 "dirty lines"

# 3. A dirty detach is refused at load time; nothing changes.
table_of 0 | dmsetup load wb1 && die "a load with cache_id 0 of a dirty device was accepted"
klog_tail 3 | grep -q "still has 16 dirty lines" || die "no clear message for the dirty detach"
assert_eq "$(bound wb1)" 1 "binding after the refused load"

# 4. Clean at load, dirty at resume: the resume fails, the device stays
# bound and suspended; loading the old table again brings it back.
drain() {
    run mgr_msg allow_migrate 1
    run mgr_msg flush_current_buffer
    wait_clean 1 60
    run mgr_msg allow_migrate 0
}
drain
table_of 0 | run dmsetup load wb1
run dd if=/tmp/c of=/dev/mapper/wb1 bs=4k seek=300 oflag=direct 2>/dev/null
must_fail dmsetup resume wb1
klog_tail 5 | grep "resume with cache_id 0 refused" | grep -q "dirty lines" || die "no clear message for the refused resume"
assert_eq "$(bound wb1)" 1 "binding after the refused resume"
dmsetup info wb1 | grep -q SUSPENDED || die "device not suspended after a failed resume"
table_of 1 | run dmsetup load wb1
run dmsetup resume wb1
assert_eq "$(bound wb1)" 1 "binding after going back to the old table"
dd if=/dev/mapper/wb1 of=/tmp/r bs=4k skip=300 count=16 iflag=direct 2>/dev/null
cmp -s /tmp/c /tmp/r || die "data written before the refused resume reads back wrong"

# 5. Refused again, then resumed again once clean: now it detaches.
drain
table_of 0 | run dmsetup load wb1
run dd if=/tmp/d of=/dev/mapper/wb1 bs=4k seek=400 oflag=direct 2>/dev/null
must_fail dmsetup resume wb1
run mgr_msg allow_migrate 1
wait_clean 1 60
run dmsetup resume wb1
assert_eq "$(bound wb1)" 0 "binding after resuming again once clean"
dd if=/dev/mapper/wb1 of=/tmp/r bs=4k skip=400 count=16 iflag=direct 2>/dev/null
cmp -s /tmp/d /tmp/r || die "data reads back wrong after the detach"
run mgr_msg allow_migrate 0

# 6. Removed dirty, re-created with cache_id 0: bound to the cache that
# holds its data, also after a plain suspend/resume.
run wb_set_cache wb1 1
run dd if=/tmp/e of=/dev/mapper/wb1 bs=4k seek=500 oflag=direct 2>/dev/null
run dmsetup remove wb1
run wb_create wb1 1 $WB_BACKING 0
assert_eq "$(bound wb1)" 1 "binding of a device re-created over dirty data"
run dmsetup suspend wb1
run dmsetup resume wb1
assert_eq "$(bound wb1)" 1 "binding after a plain suspend/resume"
dd if=/dev/mapper/wb1 of=/tmp/r bs=4k skip=500 count=16 iflag=direct 2>/dev/null
cmp -s /tmp/e /tmp/r || die "dirty data of the re-created device reads back wrong"

# 7. Bound while live by resume_cache: its pass-through writes from
# before are covered by a later empty FLUSH (it reaches the backing disk).
run mgr_msg flush_current_buffer
run dmsetup remove wb1
run mgr_msg free_cache
run wb_create wb1 1 $WB_BACKING 0
run dd if=/tmp/p of=/dev/mapper/wb1 bs=4k seek=600 oflag=direct 2>/dev/null
run mgr_msg resume_cache $WB_CACHE
assert_eq "$(bound wb1)" 1 "binding after resume_cache"
if [ "$(cat /sys/block/vda/queue/write_cache)" = "write back" ]; then
    f0=$(awk '{print $16}' /sys/block/vda/stat)
    # An empty flush of the bound device (fsync of the block device).
    dd if=/tmp/p of=/dev/mapper/wb1 bs=4k count=0 seek=600 conv=fsync,notrunc 2>/dev/null
    f1=$(awk '{print $16}' /sys/block/vda/stat)
    [ "$f1" -gt "$f0" ] || die "an empty FLUSH after a live bind did not reach the backing disk ($f0 -> $f1 flushes)"
else
    echo "backing disk has no volatile write cache: FLUSH check skipped"
fi
run mgr_msg allow_migrate 1
wait_clean 1 60
echo "reload binding OK"
