# Tables that would alias data or stack writeboost on itself are refused at
# load, with a clear reason: a cache on a writeboost device (it would write
# its log through itself: resume hung in D state), a writeboost device over
# a writeboost device (write-back needing room in the log it frees), one
# device id twice in a table, two ids over one disk (both aliased the same
# backing sectors). A plain reload still works.
. /wb/tests/lib.sh
set -e
run cache_setup
S=$((64 * 2048))
run dm_create b3 --table "0 $S linear $WB_BACKING 0"
run dm_create b4 --table "0 $S linear $WB_BACKING $S"
run wb_create w3 3 /dev/mapper/b3 1
must_fail mgr_msg format_cache_device /dev/mapper/w3
klog_tail 2 | grep -q "is writeboost device_id 3: a cache cannot live on a writeboost device" || die "no clear refusal of a cache on a writeboost device"
run mgr_msg switch_to 5
must_fail mgr_msg resume_cache /dev/mapper/w3
run mgr_msg switch_to 1
must_fail dm_create wx --table "0 $S writeboost 6 /dev/mapper/w3 1"
klog_tail 3 | grep -q "is writeboost device_id 3: writeboost devices do not stack" || die "no clear refusal of stacking"
must_fail dm_create dup --table "0 1024 writeboost 4 /dev/mapper/b4 1
1024 1024 writeboost 4 /dev/mapper/b4 1"
klog_tail 3 | grep -q "device_id 4 appears twice in one table" || die "no clear refusal of an id twice in a table"
must_fail dm_create two --table "0 1024 writeboost 7 /dev/mapper/b4 1
1024 1024 writeboost 8 /dev/mapper/b4 1"
klog_tail 3 | grep -q "is already used by device_id 7 .*: one device id per disk" || die "no clear refusal of two ids over one disk"
must_fail dm_create w9 --table "0 $S writeboost 9 /dev/mapper/b3 1"
for n in wx dup two w9; do dmsetup info $n >/dev/null 2>&1 && dmsetup remove $n; done
# A reload of the same table works.
dmsetup table w3 | dmsetup load w3
run dmsetup suspend w3
run dmsetup resume w3
run dmsetup remove w3
echo "table aliasing OK"
