# breakK: bisect of pause-multi's lost claim: ids 7 and 8 paused, no other
# device, o8 removed and re-created 12 times, then removed: id 8's disk must
# be claimed within 60 s.
. /wb/tests/lib.sh
set -e
trap 'set +e; dmsetup remove o7 2>/dev/null; dmsetup remove o8 2>/dev/null; true' EXIT
since() { dmesg | tail -n +$((mark + 1)); }
ndirty() { mgr_msg switch_to 1; mgr_status_value nr_dirty_caches; }
st() { mgr_msg switch_to 1; echo "STATUS[$1]: $(dmsetup status writeboost-mgr | grep -E "^(error|nr_relocated_lines|nr_dirty_caches|current segment id):" | tr "\n" " ")"; }
run cache_setup
sz=$((16 * 2048))
for i in 7 8; do run dm_create b$i --table "0 $sz linear $WB_BACKING $(( (i - 7) * sz ))"; done
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
st "paused"
mark=$(dmesg | wc -l)
n=0
while [ $n -lt 12 ]; do
  n=$((n + 1)); dmsetup remove o8
  usleep $(( (n * 370000) % 2300000 ))
  dm_create o8 --table "0 $sz linear /dev/mapper/b8 0" 2>/dev/null || { echo "iter $n: o8 refused"; break; }
done
st "after cycle"
since | grep -E "claimed" && echo "(claimed during the cycle)"
dmsetup info o8 >/dev/null 2>&1 && run dmsetup remove o8
i=0
until since | grep -q "claimed backing device .* of removed device_id 8"; do
  i=$((i + 1)); [ $i -lt 60 ] || { st "no claim"; die "id 8 never claimed 60 s after o8 went (ids 7, 8 paused, o8 cycled)"; }
  sleep 1
done
echo "id 8 claimed after $i s"
i=0; until [ "$(ndirty)" -le 2048 ]; do i=$((i + 1)); [ $i -lt 60 ] || die "id 8 not written back"; sleep 1; done
run wbpattern check /dev/mapper/b8 --region 0:8M --ops 0 --initial gen:1000 --seed 8
echo "pause-cycle2 done"
