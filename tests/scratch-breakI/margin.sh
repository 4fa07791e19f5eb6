# The index check's margin: caches whose index is 104..50 % of MemAvailable;
# each either resumes or is refused with ENOMEM, never an OOM kill.
. /wb/tests/lib.sh
echo -1000 > /proc/self/oom_score_adj
VDB=$(sectors_of $WB_CACHE)
avail() { sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
ooms() { dmesg | grep -c "invoked oom-killer" || true; }
mkbig() {
    dmsetup remove bigc 2>/dev/null
    printf '0 %s linear %s 0\n%s %s zero\n' $VDB $WB_CACHE $VDB $(($1 - VDB)) | dmsetup create bigc || die mkbig
    dmsetup mknodes bigc
}
C=/dev/mapper/bigc
mgr_create
# index MiB per 64 GiB: 249
for pct in 104 100 95 90 85 80 70 50; do
    sync; echo 3 > /proc/sys/vm/drop_caches
    AV=$(( $(avail) / 1024 ))
    GIB=$(( AV * pct * 64 / (249 * 100) ))
    echo "-- pct $pct: avail $AV MiB, cache $GIB GiB"
    mkbig $((GIB << 21))
    mgr_msg format_cache_device $C || die "format"
    mgr_msg switch_to 1
    O1=$(ooms)
    if mgr_msg resume_cache $C 2>/tmp/err; then
        echo "resumed; avail now $(avail) kB"
        dd if=/dev/zero of=/tmp/f bs=1M count=20 2>/dev/null; rm -f /tmp/f
        mgr_msg free_cache || die "free_cache"
    else
        klog_tail 1
    fi
    [ "$(( $(ooms) - O1 ))" = 0 ] || die "OOM kill at pct $pct"
done
dmsetup remove bigc
dmsetup remove writeboost-mgr
echo "margin OK"
