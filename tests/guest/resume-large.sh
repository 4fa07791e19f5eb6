# Resume reads the live log, not the whole ring. The cache device is 64 GiB:
# the fast disk for its first part (superblock, record and the slots the
# test writes), dm-zero behind it (reads zeroes, drops writes). A fresh
# format resumes reading 65 segment headers (the end of the empty log and
# the log horizon of 64), not 65,535; after 8 MiB of flushed writes and a
# free_cache, the resume reads the segments of the log, the end and the
# horizon again, and the data reads back. The times are printed (no timed
# verdict: the count of headers read is the check).
. /wb/tests/lib.sh
set -e
BIG=$((64 << 21))                       # 64 GiB in sectors
VDB=$(sectors_of $WB_CACHE)
printf '0 %s linear %s 0\n%s %s zero\n' $VDB $WB_CACHE $VDB $((BIG - VDB)) | dmsetup create bigc
dmsetup mknodes bigc
C=/dev/mapper/bigc
now() { cut -d' ' -f1 /proc/uptime; }
headers() {
    dmesg | grep "cache 1: resume read" | tail -n 1 | sed 's/.*resume read \([0-9]*\) segment headers.*/\1/'
}
run mgr_create
run mgr_msg format_cache_device $C
run mgr_msg switch_to 1
t0=$(now)
run mgr_msg resume_cache $C
echo "fresh 64 GiB cache: resume_cache $t0 -> $(now) s"
dmesg | grep "cache 1: resume read" | tail -n 1
assert_eq "$(headers)" 65 "headers read by the resume of a fresh cache"

run wb_create wb1 1 $WB_BACKING 1
run mgr_msg allow_migrate 0
run dd if=/dev/urandom of=/tmp/data bs=1M count=8
run dd if=/tmp/data of=/dev/mapper/wb1 bs=1M oflag=direct conv=fsync
dmsetup remove wb1
run mgr_msg free_cache
# The device owning the dirty data exists (unbound) before resume_cache.
run wb_create wb1 1 $WB_BACKING 0
t0=$(now)
run mgr_msg resume_cache $C
echo "64 GiB cache with 8 MiB of log: resume_cache $t0 -> $(now) s"
dmesg | grep "cache 1: replayed" | tail -n 1
dmesg | grep "cache 1: resume read" | tail -n 1
seg=$(dmesg | grep "cache 1: replayed" | tail -n 1 | sed 's/.*replayed \([0-9]*\) segments.*/\1/')
[ "$seg" -ge 8 ] || die "replayed only $seg segments"
assert_eq "$(headers)" $((seg + 1 + 64)) "headers read: the log, its end and the horizon"
a=$(md5sum < /tmp/data)
b=$(dd if=/dev/mapper/wb1 bs=1M count=8 iflag=direct 2>/dev/null | md5sum)
assert_eq "$b" "$a" "the data after the resume"
