# breakK: focused: ids 7 and 8 paused on one cache. A: o8 removed once
# (no cycling): is id 8's disk claimed and written back? B: o7 removed and
# re-created 12 times, then removed: is id 7's disk claimed?
. /wb/tests/lib.sh
set -e
since() { dmesg | tail -n +$((mark + 1)); }
ndirty() { mgr_msg switch_to 1; mgr_status_value nr_dirty_caches; }
# wait_claim <id> <secs>
wait_claim() {
  t0=$(date +%s); i=0
  until since | grep -q "claimed backing device .* of removed device_id $1: its write-back goes on"; do
    i=$((i + 1))
    if [ $i -ge $2 ]; then
      echo "NO CLAIM of id $1 after $2 s; dirty $(ndirty); kernel log since:"; since | grep -i writeboost | tail -8
      return 1
    fi
    sleep 1
  done
  echo "id $1 claimed after $(( $(date +%s) - t0 )) s"
}
run cache_setup
sz=$((16 * 2048))
for i in 7 8; do
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
sleep 3
echo "== A: remove o8 once (id 7 stays paused)"
mark=$(dmesg | wc -l)
run dmsetup remove o8
okA=0; wait_claim 8 100 && okA=1
echo "dirty after A: $(ndirty)"
if [ $okA = 0 ]; then
  echo "== A2: force_migrate 1 to poke the daemon"
  run mgr_msg force_migrate 1
  wait_claim 8 60 && echo "id 8 claimed only with force_migrate"
  run mgr_msg force_migrate 0
fi
i=0; until [ "$(ndirty)" -le 2048 ]; do i=$((i + 1)); [ $i -lt 60 ] || break; sleep 1; done
echo "dirty: $(ndirty)"
wbpattern check /dev/mapper/b8 --region 0:8M --ops 0 --initial gen:1000 --seed 8 | tail -2 || echo "b8 check failed"
echo "== B: o7 cycled 12 times then removed"
n=0
while [ $n -lt 12 ]; do
  n=$((n + 1)); dmsetup remove o7
  usleep $(( (n * 370000) % 2300000 ))
  dm_create o7 --table "0 $sz linear /dev/mapper/b7 0" 2>/dev/null || { echo "iter $n refused"; break; }
done
mark=$(dmesg | wc -l)
dmsetup info o7 >/dev/null 2>&1 && run dmsetup remove o7
okB=0; wait_claim 7 100 && okB=1
i=0; until [ "$(ndirty)" = 0 ]; do i=$((i + 1)); [ $i -lt 60 ] || break; sleep 1; done
echo "dirty: $(ndirty)"
wbpattern check /dev/mapper/b7 --region 0:8M --ops 0 --initial gen:1000 --seed 7 | tail -2 || echo "b7 check failed"
[ $okA = 1 ] || die "A: id 8 not claimed within 100 s of o8's removal while id 7 stays paused"
[ $okB = 1 ] || die "B: id 7 not claimed within 100 s after cycling"
echo "pause-two done"
