# Boot 3 (--memory-mb 512): ordinary caches resume; margins below 100%.
. /wb/tests/lib.sh
echo -1000 > /proc/self/oom_score_adj
VDB=$(sectors_of $WB_CACHE)
avail() { sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
ooms() { dmesg | grep -c "invoked oom-killer" || true; }
mkbig() { dmsetup remove bigc 2>/dev/null
    printf '0 %s linear %s 0\n%s %s zero\n' $VDB $WB_CACHE $VDB $(($1 - VDB)) | dmsetup create bigc || die mkbig
    dmsetup mknodes bigc; }
C=/dev/mapper/bigc
O0=$(ooms)
grep -E '^(MemTotal|MemAvailable)' /proc/meminfo
run mgr_create
run mgr_msg format_cache_device $WB_CACHE
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
run wb_create wb1 1 $WB_BACKING 1
run dd if=/dev/urandom of=/tmp/d bs=1M count=4
run dd if=/tmp/d of=/dev/mapper/wb1 bs=1M oflag=direct conv=fsync
run dmsetup remove wb1
run mgr_msg free_cache
run mgr_msg resume_cache $WB_CACHE
run mgr_msg free_cache
for g in 4 16 64; do
  mkbig $((g << 21)); run mgr_msg format_cache_device $C; run mgr_msg switch_to 2
  if mgr_msg resume_cache $C 2>/tmp/err; then echo "$g GiB resumed"; mgr_msg free_cache; else cat /tmp/err; klog_tail 1; fi
  echo "OOM kills: $(( $(ooms) - O0 ))"
done
NEED=$(dmesg | grep "index of .* lines" | tail -1)
echo "$NEED"
# 64 GiB need = 249 MiB (from boot 2)
for pct in 90 94 97 99; do
    sync; echo 3 > /proc/sys/vm/drop_caches
    AV=$(( $(avail) / 1024 ))
    MB=$(( AV * pct / 100 )); SECT=$(( MB * (64 << 21) / 249 ))
    echo "-- pct $pct: avail $AV MiB, need ~$MB MiB"
    mkbig $SECT; mgr_msg format_cache_device $C; mgr_msg switch_to 2
    O1=$(ooms)
    if mgr_msg resume_cache $C 2>/tmp/err; then echo "resumed; avail now $(avail) kB"; mgr_msg free_cache; else cat /tmp/err; klog_tail 1; fi
    echo "OOM kills pct $pct: $(( $(ooms) - O1 ))"
done
wb_teardown_all
echo "x2 DONE"
