# breakK: after the cut: o7 holds id 7's disk again at resume time; then
# resume with id 7 absent, then with wb7 created (cache 0) while o7 exists.
. /wb/tests/lib.sh
set -e
since() { dmesg | tail -n +$((mark + 1)); }
ndirty() { mgr_msg switch_to 1; mgr_status_value nr_dirty_caches; }
sz=$((16 * 2048))
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b9 --table "0 $sz linear $WB_BACKING $sz"
run dm_create o7 --table "0 $sz linear /dev/mapper/b7 0"
run mgr_create
run wb_create wb9 9 /dev/mapper/b9 0
run mgr_msg switch_to 1
mark=$(dmesg | wc -l)
rc=0; mgr_msg resume_cache $WB_CACHE 2>/tmp/err || rc=$?
echo "resume without id 7: rc=$rc"; since | tail -5
if [ $rc = 0 ]; then
  echo "resumed without device 7; dirty $(ndirty)"
  run mgr_msg allow_migrate 1
  sleep 5
  dd if=/dev/mapper/o7 bs=1M count=8 iflag=direct 2>/dev/null | cmp -s -n 8388608 - /dev/zero && echo "o7 untouched" || echo "o7 CHANGED while held"
  run dmsetup remove wb9
  run mgr_msg switch_to 1
  run mgr_msg free_cache
  run wb_create wb9 9 /dev/mapper/b9 0
fi
run wb_create wb7 7 /dev/mapper/b7 0
run mgr_msg switch_to 1
mark=$(dmesg | wc -l)
rc=0; mgr_msg resume_cache $WB_CACHE || rc=$?
echo "resume with wb7 (o7 present): rc=$rc"; since | tail -5
[ $rc = 0 ] || die "resume failed"
run wbpattern check /dev/mapper/wb7 --region 0:8M --ops 0 --initial gen:1000 --seed 7
run wbpattern check /dev/mapper/wb9 --region 0:8M --ops 500 --seed 9 --gen-base 2000 --initial gen:1000
# pause again via removal while o7 exists, then mount a fs on o7 at a far offset? o7 is the whole disk: mkfs on o7 would destroy id 7's region
mark=$(dmesg | wc -l)
run dmsetup remove wb7
since | grep "cannot claim" || die "not paused after resume"
run mgr_msg allow_migrate 1
run mgr_msg force_migrate 1
wait_clean 9 60
run dmsetup remove o7
i=0
until [ "$(ndirty)" = 0 ]; do i=$((i + 1)); [ $i -lt 90 ] || die "id 7 never written back: $(ndirty)"; sleep 1; done
run wbpattern check /dev/mapper/b7 --region 0:8M --ops 0 --initial gen:1000 --seed 7
run wbpattern check /dev/mapper/b9 --region 0:8M --ops 500 --seed 9 --gen-base 2000 --initial gen:1000
echo "pc-paused done"
