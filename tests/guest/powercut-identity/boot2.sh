# Boot 2: device 7 over disk B (same size, created first so the dm-N names
# differ too): resume_cache is refused and nothing changes; device 7 over
# disk A: resume works, the data is right, and write-back goes to disk A.
. /wb/tests/lib.sh
set -e
sz=$((16 * 2048))
dd if=$WB_BACKING of=/tmp/data bs=4k count=64 skip=$((400 * 256)) iflag=direct 2>/dev/null
run mgr_create
run dm_create backB --table "0 $sz linear $WB_BACKING $sz"
run dm_create backA --table "0 $sz linear $WB_BACKING 0"
writeboost-dump $WB_CACHE > /tmp/dump 2>&1 || true
grep -q "7 ($sz sectors, identity 0x" /tmp/dump || { cat /tmp/dump; die "the record shows no identity for device 7"; }
run wb_create wb7 7 /dev/mapper/backB 0
run mgr_msg switch_to 1
must_fail mgr_msg resume_cache $WB_CACHE
klog_tail 3 | grep -q "device_id 7 owns 64 dirty lines of another disk than its backing device" \
    || { klog_tail 3; die "no clear refusal of the wrong disk"; }
[ ! -e $WB_SYSFS/caches/1 ] || die "cache 1 exists after a refused resume"
writeboost-dump $WB_CACHE > /tmp/dump2 2>&1 || true
cmp -s /tmp/dump /tmp/dump2 || { diff /tmp/dump /tmp/dump2; die "the refused resume changed the cache device"; }
run dmsetup remove wb7
run wb_create wb7 7 /dev/mapper/backA 0
run mgr_msg resume_cache $WB_CACHE
assert_eq "$(dmsetup status wb7 | cut -d' ' -f4-5)" "cache_id 1" "device 7 is bound to the cache holding its data"
dd if=/dev/mapper/wb7 of=/tmp/r bs=4k count=64 skip=100 iflag=direct 2>/dev/null
cmp -s /tmp/data /tmp/r || die "device 7 over disk A does not read its data"
run mgr_msg allow_migrate 1
wait_clean 7
dd if=/dev/mapper/backA of=/tmp/a bs=4k count=64 skip=100 iflag=direct 2>/dev/null
cmp -s /tmp/data /tmp/a || die "the data was not written back to disk A"
dd if=/dev/mapper/backB of=/tmp/b bs=4k count=64 skip=100 iflag=direct 2>/dev/null
head -c $((64 * 4096)) /dev/zero > /tmp/z
cmp -s /tmp/z /tmp/b || die "disk B was written"
echo "identity OK"
