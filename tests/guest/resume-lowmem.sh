# A resume that the machine has no memory for fails with ENOMEM and a
# message; it does not invoke the OOM killer (which would kill some other
# process to make room for the cache's index), and it leaves nothing
# behind: with memory back, the same resume works.
#
# The cache is 64 GiB (the fast disk's first part, dm-zero behind it): its
# index takes about 260 MiB. A memory hog (fio --lockmem, mlock'd, the OOM
# killer's first choice) leaves about 128 MiB available. Both table forms:
# resume_cache of the 2013 form and the table load of the 2.2 form (whose
# private cache is formatted and resumed in the constructor).
. /wb/tests/lib.sh
set -e
echo -1000 > /proc/self/oom_score_adj
BIG=$((64 << 21))                       # 64 GiB in sectors
VDB=$(sectors_of $WB_CACHE)
printf '0 %s linear %s 0\n%s %s zero\n' $VDB $WB_CACHE $VDB $((BIG - VDB)) | dmsetup create bigc
dmsetup mknodes bigc
C=/dev/mapper/bigc
avail() { sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
ooms() { dmesg | grep -c "invoked oom-killer" || true; }
HOG=
# The tests after this one in the same boot need the memory back.
trap '[ -n "$HOG" ] && kill $HOG 2>/dev/null' EXIT
hog() {
    sync; echo 3 > /proc/sys/vm/drop_caches
    _mb=$(( $(avail) / 1024 - 128 ))
    [ $_mb -gt 300 ] || die "only $(avail) kB available before the hog"
    fio --name=hog --ioengine=null --size=1M --rw=read --lockmem=${_mb}M \
        --time_based --runtime=600 --output=/dev/null >/dev/null 2>&1 &
    HOG=$!
    echo 1000 > /proc/$HOG/oom_score_adj
    # fio locks its memory at start-up: wait until it has.
    _i=0
    while [ $(avail) -gt $(( (128 + 64) * 1024 )) ]; do
        _i=$((_i + 1)); [ $_i -lt 60 ] || die "the hog did not take its memory ($(avail) kB available)"
        sleep 0.5
    done
    echo "hog of $_mb MiB: $(avail) kB available"
}
unhog() {
    kill -0 $HOG 2>/dev/null || die "the hog was killed (the OOM killer ran)"
    kill $HOG; wait $HOG 2>/dev/null || true; HOG=
}
O0=$(ooms)

echo "== the 2013 form: resume_cache"
run mgr_create
run mgr_msg format_cache_device $C
run mgr_msg switch_to 1
hog
if mgr_msg resume_cache $C 2>/tmp/err; then
    die "resume_cache of a 64 GiB cache succeeded with $(avail) kB available (OOM kills: $(( $(ooms) - O0 )))"
fi
cat /tmp/err
klog_tail 2
assert_eq "$(( $(ooms) - O0 ))" 0 "OOM killer runs during the refused resume"
assert_contains "$(cat /tmp/err)" "Cannot allocate memory" "dmsetup's error"
assert_contains "$(klog_tail 3)" "resume_cache 1 on $C: not enough memory for the cache's index" "the kernel's message"
[ ! -e $WB_SYSFS/caches/1 ] || die "cache 1 in sysfs after a failed resume"
unhog
run mgr_msg resume_cache $C
[ -e $WB_SYSFS/caches/1 ] || die "no cache 1 after the resume with memory"
run mgr_msg free_cache

echo "== the 2.2 form: the table load formats and resumes the private cache"
run dd if=/dev/zero of=$C bs=4096 count=1 oflag=direct
SZ=$(sectors_of $WB_BACKING)
hog
if dmsetup create wb22 --table "0 $SZ writeboost $WB_BACKING $C" 2>/tmp/err; then
    die "2.2 table over a 64 GiB cache accepted with $(avail) kB available"
fi
cat /tmp/err
klog_tail 2
assert_eq "$(( $(ooms) - O0 ))" 0 "OOM killer runs during the refused table load"
assert_contains "$(klog_tail 3)" "not enough memory for the cache's index" "the kernel's message (2.2)"
dmsetup info wb22 >/dev/null 2>&1 && die "device wb22 exists after a refused table"
# Refused before anything was written: the device is not formatted.
dd if=$C of=/tmp/sb bs=4096 count=1 iflag=direct 2>/dev/null
head -c 4096 /dev/zero | cmp -s - /tmp/sb || die "the refused 2.2 table formatted the cache device"
unhog
run dm_create wb22 --table "0 $SZ writeboost $WB_BACKING $C"
run dd if=/dev/urandom of=/tmp/d bs=64k count=16
run dd if=/tmp/d of=/dev/mapper/wb22 bs=64k oflag=direct conv=fsync
run dd if=/dev/mapper/wb22 of=/tmp/r bs=64k count=16 iflag=direct
run cmp /tmp/d /tmp/r
run dmsetup remove wb22

echo "== an index that just fits in what is available: refused all the same"
# The rest of the resume and of the system need memory too (found by
# breakI: such an index was allocated, the next allocation invoked the
# OOM killer, and the guest panicked with nothing left to kill).
NEED=$(dmesg | grep "not enough memory for the cache's index" | tail -1 | sed 's/.*index (\([0-9]*\) MiB.*/\1/')
sync; echo 3 > /proc/sys/vm/drop_caches
AV=$(( $(avail) / 1024 ))
GIB=$(( AV * 64 / NEED ))
echo "index of a 64 GiB cache: $NEED MiB; $AV MiB available: a $GIB GiB cache"
run dmsetup remove bigc
printf '0 %s linear %s 0\n%s %s zero\n' $VDB $WB_CACHE $VDB $(( (GIB << 21) - VDB )) | dmsetup create bigc
dmsetup mknodes bigc
run mgr_msg format_cache_device $C
run mgr_msg switch_to 1
must_fail mgr_msg resume_cache $C
klog_tail 1
assert_contains "$(klog_tail 3)" "not enough memory for the cache's index" "the kernel's message (index of all available memory)"
assert_eq "$(( $(ooms) - O0 ))" 0 "OOM killer runs for an index of all available memory"
[ ! -e $WB_SYSFS/caches/1 ] || die "cache 1 in sysfs after a failed resume"
run wb_teardown_all
echo "resume-lowmem OK"
