# A backing disk that grows across a crash: the device is re-created over
# the larger disk and resume_cache accepts it (the data lies below the old
# size) and registers the new size; a smaller disk is refused. Boot 1 puts
# flushed data in the cache of a device over a 64 MiB slice, then cuts.
. /wb/tests/lib.sh
set -e
run cache_setup
run dm_create back1 --table "0 $((64 * 2048)) linear $WB_BACKING 0"
run wb_create wb1 1 /dev/mapper/back1 1
run dd if=/dev/urandom of=/tmp/data bs=4k count=30 2>/dev/null
run dd if=/tmp/data of=/dev/mapper/wb1 bs=4k count=30 seek=1000 oflag=direct conv=fsync 2>/dev/null
# Reference copy beyond the slices used by the test.
run dd if=/tmp/data of=$WB_BACKING bs=4k count=30 seek=$((400 * 256)) oflag=direct conv=fsync 2>/dev/null
wb_powercut
