# Boot 1 (1024 MiB): leaks across failures, dirty devices, threshold sizes.
. /wb/tests/lib.sh
echo -1000 > /proc/self/oom_score_adj
VDB=$(sectors_of $WB_CACHE)
avail() { sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
mi() { sync; echo 3 > /proc/sys/vm/drop_caches; sleep 1; grep -E '^(MemFree|MemAvailable|Slab|SUnreclaim|VmallocUsed|Percpu):' /proc/meminfo | tr -s ' ' | tr '\n' ' '; echo; }
ooms() { dmesg | grep -c "invoked oom-killer" || true; }
mkbig() { # mkbig <sectors>
    dmsetup remove bigc 2>/dev/null
    printf '0 %s linear %s 0\n%s %s zero\n' $VDB $WB_CACHE $VDB $(($1 - VDB)) | dmsetup create bigc || die mkbig
    dmsetup mknodes bigc
}
C=/dev/mapper/bigc
HOG=
trap '[ -n "$HOG" ] && kill $HOG 2>/dev/null' EXIT
hog() {
    sync; echo 3 > /proc/sys/vm/drop_caches
    _mb=$(( $(avail) / 1024 - ${1:-128} ))
    fio --name=hog --ioengine=null --size=1M --rw=read --lockmem=${_mb}M \
        --time_based --runtime=600 --output=/dev/null >/dev/null 2>&1 &
    HOG=$!
    echo 1000 > /proc/$HOG/oom_score_adj
    _i=0
    while [ $(avail) -gt $(( (${1:-128} + 64) * 1024 )) ]; do
        _i=$((_i + 1)); [ $_i -lt 60 ] || die "hog slow"
        sleep 0.5
    done
    echo "hog of $_mb MiB: $(avail) kB available"
}
unhog() {
    kill -0 $HOG 2>/dev/null || echo "FINDING: the hog was killed (OOM killer ran)"
    kill $HOG; wait $HOG 2>/dev/null; HOG=
}
O0=$(ooms)
echo "== base"; mi
run mgr_create

echo "== T0 ordinary cache resumes"
run mgr_msg format_cache_device $WB_CACHE
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
run mgr_msg free_cache

echo "== T1 huge cache 512 GiB: failure + measure"
mkbig $((512 << 21))
run mgr_msg format_cache_device $C
run mgr_msg switch_to 1
mgr_msg resume_cache $C 2>/tmp/err && die "512GiB resume succeeded"
cat /tmp/err; klog_tail 2
NEED=$(dmesg | grep "not enough memory for the cache's index" | tail -1 | sed "s/.*index (\([0-9]*\) MiB.*/\1/")
echo "need for 512 GiB: $NEED MiB"
echo "== T2 leak: 10 failed precheck attempts"
if [ -n "$SKIPT2" ]; then :; fi
B=$(mi); echo "before: $B"
i=0; while [ $i -lt 10 ]; do mgr_msg resume_cache $C 2>/dev/null && die "succeeded"; i=$((i+1)); done
A=$(mi); echo "after:  $A"
[ -e $WB_SYSFS/caches/1 ] && echo "FINDING: caches/1 exists"
echo "OOM kills so far: $(( $(ooms) - O0 ))"

echo "== T3 dirty devices bound by the resume, memory short"
mkbig $((64 << 21))
run mgr_msg format_cache_device $C
run mgr_msg switch_to 1
run mgr_msg resume_cache $C
run wb_create wb1 1 $WB_BACKING 1 204800
run mgr_msg allow_migrate 0
run dd if=/dev/urandom of=/tmp/d1 bs=1M count=8
run dd if=/tmp/d1 of=/dev/mapper/wb1 bs=1M oflag=direct conv=fsync
run dmsetup remove wb1
run mgr_msg free_cache
run wb_create wb1 1 $WB_BACKING 0 204800
cat $WB_SYSFS/devices/1/cache_id 2>&1
hog 128
i=0; while [ $i -lt 5 ]; do
  if mgr_msg resume_cache $C 2>/tmp/err; then echo "FINDING: resume with dirty dev succeeded under hog"; break; fi
  i=$((i+1)); done
cat /tmp/err; klog_tail 3
echo "cache_id of dev 1 after failures: $(cat $WB_SYSFS/devices/1/cache_id 2>&1)"
dmsetup table wb1; dmsetup status wb1 | head -3
ls $WB_SYSFS/caches/
echo "OOM kills so far: $(( $(ooms) - O0 ))"
unhog
run mgr_msg resume_cache $C
echo "cache_id of dev 1 after good resume: $(cat $WB_SYSFS/devices/1/cache_id 2>&1)"
a=$(md5sum < /tmp/d1); b=$(dd if=/dev/mapper/wb1 bs=1M count=8 iflag=direct 2>/dev/null | md5sum)
[ "$a" = "$b" ] && echo "data OK" || echo "FINDING: data mismatch after resume"
run dmsetup remove wb1
run mgr_msg allow_migrate 1
run mgr_msg free_cache

echo "== T4 2.2 form: 10 failed table loads, leak"
mkbig $((512 << 21))
dd if=/dev/zero of=$C bs=4096 count=1 oflag=direct 2>/dev/null
SZ=$(sectors_of $WB_BACKING)
B=$(mi); echo "before: $B"
i=0; while [ $i -lt 10 ]; do dmsetup create wb22 --table "0 $SZ writeboost $WB_BACKING $C" 2>/tmp/err && die "2.2 ok"; i=$((i+1)); done
A=$(mi); echo "after:  $A"
cat /tmp/err; klog_tail 2
dmsetup info wb22 >/dev/null 2>&1 && echo "FINDING: wb22 exists"
ls $WB_SYSFS/caches/; dmsetup ls
echo "OOM kills so far: $(( $(ooms) - O0 ))"

echo "== T6 2.2 form with dirty data, memory short"
mkbig $((64 << 21))
dd if=/dev/zero of=$C bs=4096 count=1 oflag=direct 2>/dev/null
run dm_create wb22 --table "0 204800 writeboost $WB_BACKING $C"
dmsetup message wb22 0 allow_migrate 0 || echo "(no allow_migrate on 2.2 dev)"
run dd if=/dev/urandom of=/tmp/d2 bs=1M count=8
run dd if=/tmp/d2 of=/dev/mapper/wb22 bs=1M oflag=direct conv=fsync
run dmsetup remove wb22
hog 128
i=0; while [ $i -lt 3 ]; do dmsetup create wb22 --table "0 204800 writeboost $WB_BACKING $C" 2>/tmp/err && { echo "FINDING: 2.2 load succeeded under hog"; break; }; i=$((i+1)); done
cat /tmp/err; klog_tail 3
dmsetup info wb22 >/dev/null 2>&1 && { echo "wb22 exists"; dmsetup remove wb22; }
ls $WB_SYSFS/caches/
echo "OOM kills so far: $(( $(ooms) - O0 ))"
unhog
run dm_create wb22 --table "0 204800 writeboost $WB_BACKING $C"
a=$(md5sum < /tmp/d2); b=$(dd if=/dev/mapper/wb22 bs=1M count=8 iflag=direct 2>/dev/null | md5sum)
[ "$a" = "$b" ] && echo "2.2 data OK" || echo "FINDING: 2.2 data mismatch"
run dmsetup remove wb22

echo "== T5 threshold sizes (need vs avail)"
# per-GiB need from T1
for pct in 104 100 98 96; do
    sync; echo 3 > /proc/sys/vm/drop_caches
    AV=$(( $(avail) / 1024 ))
    GIB=$(( AV * pct * 512 / (NEED * 100) ))
    echo "-- pct $pct: avail $AV MiB, cache $GIB GiB (need ~$(( GIB * NEED / 512 )) MiB)"
    mkbig $((GIB << 21))
    mgr_msg format_cache_device $C || { echo "format failed"; continue; }
    mgr_msg switch_to 1
    O1=$(ooms)
    if mgr_msg resume_cache $C 2>/tmp/err; then
        echo "resumed; avail now $(avail) kB"; klog_tail 2
        ls / >/dev/null; dd if=/dev/zero of=/tmp/f bs=1M count=20 2>/dev/null; rm -f /tmp/f
        mgr_msg free_cache || echo "free_cache failed"
    else
        cat /tmp/err; klog_tail 2
    fi
    echo "OOM kills in this step: $(( $(ooms) - O1 ))"
    [ -e $WB_SYSFS/caches/1 ] && echo "caches/1 still there" && mgr_msg free_cache
done
mi
echo "total OOM kills: $(( $(ooms) - O0 ))"
dmesg | grep -i -A3 "oom-killer" | head -30
wb_teardown_all
echo "x1 DONE"
