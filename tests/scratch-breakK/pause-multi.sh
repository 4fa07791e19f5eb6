# breakK: two removed ids paused at once; a third id writing back normally;
# drop_caches / force_migrate while paused; re-create id over a different
# disk; re-create over the other table; other table removed/re-created
# repeatedly; free_cache while paused.
. /wb/tests/lib.sh
set -e
since() { dmesg | tail -n +$((mark + 1)); }
st() { mgr_msg switch_to 1; echo "STATUS[$1]: $(dmsetup status writeboost-mgr | grep -E "^(error|nr_relocated_lines|nr_dirty_caches|last_migrated_segment_id|current segment id):" | tr "\n" " ")"; }
trap 'set +e; dmsetup remove o7 2>/dev/null; dmsetup remove o8 2>/dev/null; true' EXIT
ndirty() { mgr_msg switch_to 1; mgr_status_value nr_dirty_caches; }
run cache_setup
sz=$((16 * 2048))
for i in 7 8 9 10; do
  run dm_create b$i --table "0 $sz linear $WB_BACKING $(( (i - 7) * sz ))"
  dd if=/dev/zero of=/dev/mapper/b$i bs=1M count=16 oflag=direct 2>/dev/null
done
head -c $((8 << 20)) /dev/zero > /tmp/z8
run wb_create wb7 7 /dev/mapper/b7 1
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run wbpattern fill /dev/mapper/wb7 --region 0:8M --gen 1000 --seed 7
run wbpattern fill /dev/mapper/wb8 --region 0:8M --gen 1000 --seed 8
run dm_create o7 --table "0 $sz linear /dev/mapper/b7 0"
run dm_create o8 --table "0 $sz linear /dev/mapper/b8 0"
mark=$(dmesg | wc -l)
run dmsetup remove wb7
run dmsetup remove wb8
since | grep "cannot claim" || die "no paused messages"
[ $(since | grep -c "write-back of the id's 2048 dirty lines is paused") = 2 ] || die "expected two paused"
echo "dirty total: $(ndirty)"

st "before == 1."; echo "== 1. id 9 writes back normally while 7 and 8 paused"
run mgr_msg allow_migrate 1
run wbpattern fill /dev/mapper/wb9 --region 0:8M --gen 1000 --seed 9
t0=$(date +%s)
wait_clean 9 60
echo "id 9 clean after $(( $(date +%s) - t0 )) s"
run wbpattern check /dev/mapper/b9 --region 0:8M --ops 0 --initial gen:1000 --seed 9
dd if=/dev/mapper/o7 bs=1M count=8 iflag=direct of=/tmp/r 2>/dev/null
cmp -s /tmp/r /tmp/z8 || die "id 7 wrote to the paused disk"
echo "dirty total: $(ndirty)"

st "before == 2."; echo "== 2. drop_caches on wb9 while paused"
run wbpattern write /dev/mapper/wb9 --region 0:8M --ops 300 --seed 9 --gen-base 2000
t0=$(date +%s)
rc=0; timeout 90 dmsetup message wb9 0 drop_caches 2>/tmp/err || rc=$?
echo "drop_caches rc=$rc after $(( $(date +%s) - t0 )) s: $(cat /tmp/err)"; dmesg | tail -3
echo "wb9 status: $(dmsetup status wb9)"

st "before == 3."; echo "== 3. force_migrate / flush_current_buffer while paused"
run mgr_msg switch_to 1
run mgr_msg force_migrate 1
run mgr_msg flush_current_buffer
sleep 5
dd if=/dev/mapper/o7 bs=1M count=8 iflag=direct of=/tmp/r 2>/dev/null
cmp -s /tmp/r /tmp/z8 || die "id 7 wrote to the paused disk (force_migrate)"
dd if=/dev/mapper/o8 bs=1M count=8 iflag=direct of=/tmp/r 2>/dev/null
cmp -s /tmp/r /tmp/z8 || die "id 8 wrote to the paused disk (force_migrate)"
echo "dirty total: $(ndirty)"
run mgr_msg force_migrate 0
since | grep "write-back paused" | head -3

st "before == 4."; echo "== 4. re-create id 7 over a different disk (b10) while paused"
mark=$(dmesg | wc -l)
if dm_create wb7 --table "0 $sz writeboost 7 /dev/mapper/b10 1" 2>/tmp/err; then
  echo "ACCEPTED id 7 over b10!"; dmsetup table wb7; dmsetup remove wb7
else echo "refused: $(cat /tmp/err)"; since | tail -2; fi
st "before == 4b."; echo "== 4b. id 7 over o7 (another table over its disk)"
mark=$(dmesg | wc -l)
if dm_create wb7 --table "0 $sz writeboost 7 /dev/mapper/o7 1" 2>/tmp/err; then
  echo "ACCEPTED id 7 over o7"; dmsetup table wb7; dmsetup remove wb7
else echo "refused: $(cat /tmp/err)"; since | tail -2; fi
echo "dirty total: $(ndirty)"

st "before == 5."; echo "== 5. o8 removed and re-created repeatedly"
mark=$(dmesg | wc -l)
n=0
while [ $n -lt 12 ]; do
  n=$((n + 1))
  dmsetup remove o8 || echo "remove o8 failed"
  usleep $(( (n * 370000) % 2300000 ))
  if dm_create o8 --table "0 $sz linear /dev/mapper/b8 0" 2>/tmp/err; then
    echo "iter $n: o8 re-created (t=$(cut -d' ' -f1 /proc/uptime))"
  else
    echo "iter $n: o8 refused: $(cat /tmp/err | head -1)"; break
  fi
done
since | grep -E "claim|paused" | tail -5
dmsetup info o8 >/dev/null 2>&1 && { echo "o8 still present, removing"; run dmsetup remove o8; }
st "after cycle"
i=0
until since | grep -q "claimed backing device .* of removed device_id 8"; do
  i=$((i + 1))
  if [ $i -ge 60 ]; then
    echo "NO CLAIM of id 8 60 s after o8 went; dirty $(ndirty)"; dmsetup status writeboost-mgr | grep -v "^[01] "
    echo "kernel log since the cycle began:"; since | grep -v "device-mapper: ioctl" | tail -15
    echo "-- poke: force_migrate 1 for 40 s"; mgr_msg force_migrate 1
    j=0; until since | grep -q "claimed backing device .* of removed device_id 8"; do j=$((j + 1)); [ $j -lt 40 ] || break; sleep 1; done
    echo "after poke ($j s): $(since | grep 'device_id 8' | tail -2)"; mgr_msg force_migrate 0
    die "never claimed id 8's disk after o8 was removed (60 s)"
  fi
  sleep 1
done
# while dirty, another table over b8 must be refused
mark2=$(dmesg | wc -l)
if dm_create o8 --table "0 $sz linear /dev/mapper/b8 0" 2>/dev/null; then
  echo "o8 created after claim, dirty=$(ndirty)"; dmsetup remove o8
else echo "o8 refused after claim (ok): $(dmesg | tail -1)"; fi
i=0
until [ "$(ndirty)" -le 2048 ]; do
  i=$((i + 1)); [ $i -lt 90 ] || die "id 8 never written back: dirty $(ndirty)"; sleep 1
done
run wbpattern check /dev/mapper/b8 --region 0:8M --ops 0 --initial gen:1000 --seed 8
dd if=/dev/mapper/o7 bs=1M count=8 iflag=direct of=/tmp/r 2>/dev/null
cmp -s /tmp/r /tmp/z8 || die "id 7 wrote to the paused disk"

st "before == 6."; echo "== 6. free_cache while id 7 paused"
run dmsetup remove wb9
mark=$(dmesg | wc -l)
run mgr_msg switch_to 1
rc=0; timeout 60 dmsetup message writeboost-mgr 0 free_cache || rc=$?
echo "free_cache rc=$rc"; since | tail -4
[ -d $WB_SYSFS/caches/1 ] && echo "cache 1 still present"
# The disk must be unclaimed now; o7 still there; then create wb7 over b7 (cache 0) and resume.
run dmsetup remove o7
run wb_create wb7 7 /dev/mapper/b7 0
run mgr_msg switch_to 1
mark=$(dmesg | wc -l)
rc=0; mgr_msg resume_cache $WB_CACHE || rc=$?
echo "resume rc=$rc"; since | tail -4
echo "wb7 status: $(dmsetup status wb7)"
run wbpattern check /dev/mapper/wb7 --region 0:8M --ops 0 --initial gen:1000 --seed 7
run mgr_msg allow_migrate 1
wait_clean 7 60
run dmsetup remove wb7
run wbpattern check /dev/mapper/b7 --region 0:8M --ops 0 --initial gen:1000 --seed 7
echo "pause-multi done"
