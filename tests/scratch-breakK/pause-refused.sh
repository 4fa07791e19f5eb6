# breakK: does a refused re-creation of paused id 7 (over another disk)
# break the claim retry of another paused id (8)? Case R: ids 7, 8 paused,
# wb7 over b10 refused twice, then o8 removed: id 8 must be claimed within
# ~35 s (back-off is at most 30 s). Case F: force_migrate toggled + id 9 busy.
. /wb/tests/lib.sh
set -e
since() { dmesg | tail -n +$((mark + 1)); }
ndirty() { mgr_msg switch_to 1; mgr_status_value nr_dirty_caches; }
wait_claim() {
  t0=$(date +%s); i=0
  until since | grep -q "claimed backing device .* of removed device_id $1: its write-back goes on"; do
    i=$((i + 1))
    if [ $i -ge $2 ]; then
      echo "NO CLAIM of id $1 after $2 s; dirty $(ndirty); kernel log since:"; since | tail -8
      return 1
    fi
    sleep 1
  done
  echo "id $1 claimed after $(( $(date +%s) - t0 )) s"
}
run cache_setup
sz=$((16 * 2048))
for i in 7 8 9 10; do
  run dm_create b$i --table "0 $sz linear $WB_BACKING $(( (i - 7) * sz ))"
done
run wb_create wb7 7 /dev/mapper/b7 1
run wb_create wb8 8 /dev/mapper/b8 1
run wbpattern fill /dev/mapper/wb7 --region 0:8M --gen 1000 --seed 7
run wbpattern fill /dev/mapper/wb8 --region 0:8M --gen 1000 --seed 8
run dm_create o7 --table "0 $sz linear /dev/mapper/b7 0"
run dm_create o8 --table "0 $sz linear /dev/mapper/b8 0"
run dmsetup remove wb7
run dmsetup remove wb8
run mgr_msg allow_migrate 1
sleep 2
echo "== R: refused re-creation of id 7 over b10 (twice)"
mark=$(dmesg | wc -l)
must_fail dm_create wb7 --table "0 $sz writeboost 7 /dev/mapper/b10 1" 2>/dev/null
must_fail dm_create wb7 --table "0 $sz writeboost 7 /dev/mapper/o7 1" 2>/dev/null
since | grep -c "cannot claim" | sed 's/^/cannot-claim lines logged by the refused loads: /'
dmsetup ls
sleep 2
mark=$(dmesg | wc -l)
run dmsetup remove o8
okR=0; wait_claim 8 45 && okR=1
if [ $okR = 0 ]; then
  echo "-- poke with force_migrate 1"
  run mgr_msg force_migrate 1
  wait_claim 8 45 || true
  run mgr_msg force_migrate 0
  echo "-- create id 8 over b8 again"
  mark=$(dmesg | wc -l)
  run wb_create wb8 8 /dev/mapper/b8 1
  wait_clean 8 60
  run dmsetup remove wb8
fi
run wbpattern check /dev/mapper/b8 --region 0:8M --ops 0 --initial gen:1000 --seed 8
mark=$(dmesg | wc -l)
run dmsetup remove o7
okR7=0; wait_claim 7 45 && okR7=1
[ $okR = 1 ] || die "R: id 8 never claimed after o8 went (a refused load of id 7 happened before)"
[ $okR7 = 1 ] || die "R: id 7 never claimed after o7 went (its re-creation was refused before)"
echo "pause-refused done"
