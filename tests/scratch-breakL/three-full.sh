# breakL C: three ids on a 32 MiB cache (31 segments): id 7 paused (o7
# holds its disk) with 14 MiB, id 8's disk dead (dm-error) with 14 MiB,
# id 9 healthy. The log is nearly full of parked lines. Id 9's writes must
# either go in or fail with EIO within ~30 s (never hang); after id 8's disk
# heals, id 9 writes normally and everything drains intact.
. /wb/tests/lib.sh
set -e
trap "set +e; dmsetup remove o7 2>/dev/null; true" EXIT
since() { dmesg | tail -n +$((mark + 1)); }
ndirty() { mgr_msg switch_to 1; mgr_status_value nr_dirty_caches; }
run dm_create cdev --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run mgr_create
run mgr_msg format_cache_device /dev/mapper/cdev
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
sz=$((64 * 2048))
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b8 --table "0 $sz linear $WB_BACKING $sz"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run dd if=/dev/zero of=/dev/mapper/b7 bs=1M count=16 oflag=direct 2>/dev/null
run dd if=/dev/zero of=/dev/mapper/b8 bs=1M count=16 oflag=direct 2>/dev/null
run wb_create wb7 7 /dev/mapper/b7 1
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run mgr_msg allow_migrate 0
run timeout 60 wbpattern fill /dev/mapper/wb7 --region 0:${M7:-14}M --gen 1000 --seed 7
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:${M8:-14}M --gen 1000 --seed 8
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync
echo "dirty: $(ndirty)"
run dm_create o7 --table "0 $sz linear /dev/mapper/b7 0"
mark=$(dmesg | wc -l)
run dmsetup remove wb7
since | grep -q "cannot claim backing device" || die "not paused"
run dmsetup suspend b8
run dmsetup load b8 --table "0 $sz error"
run dmsetup resume b8
run mgr_msg allow_migrate 1
sleep 3
echo "--- free_cache must refuse"
must_fail mgr_msg free_cache
echo "--- id 9 writes 8 MiB into the nearly full log"
t0=$(date +%s); rc=0
timeout 200 wbpattern write /dev/mapper/wb9 --region 0:8M --ops 2048 --sizes 4K --sequential --seed 9 --gen-base 2000 --fsync-every 256 --print-progress > /tmp/w9.out 2>/tmp/w9.err || rc=$?
echo "id 9 writer rc=$rc after $(( $(date +%s) - t0 )) s; $(tail -1 /tmp/w9.out); $(tail -2 /tmp/w9.err)"
echo "relocated: $(mgr_status_value nr_relocated_lines) segment: $(mgr_status_value 'current segment id')"
since | grep -v "^$" | tail -6
[ $rc -lt 124 ] || die "id 9's writer hung (killed after 200 s)"
echo "--- a second writer must fail fast or succeed"
t0=$(date +%s); rc2=0
timeout 100 dd if=/dev/zero of=/dev/mapper/wb9 bs=4k seek=4096 count=256 oflag=direct 2>/tmp/dd.err || rc2=$?
echo "dd rc=$rc2 after $(( $(date +%s) - t0 )) s"
[ $rc2 -lt 124 ] || die "id 9's dd hung"
echo "--- id 8's disk heals"
run dmsetup suspend b8
run dmsetup load b8 --table "0 $sz linear $WB_BACKING $sz"
run dmsetup resume b8
run wait_clean 8 180
echo "--- id 9 writes again"
run timeout 200 wbpattern write /dev/mapper/wb9 --region 0:8M --ops 2048 --sizes 4K --sequential --seed 9 --gen-base 2000 --fsync-every 256
run timeout 60 dd if=/dev/zero of=/dev/mapper/wb9 bs=4k seek=4096 count=256 oflag=direct
run wbpattern check /dev/mapper/wb9 --region 0:8M --ops 2048 --sizes 4K --sequential --seed 9 --gen-base 2000
run wbpattern check /dev/mapper/wb8 --region 0:${M8:-14}M --ops 0 --initial gen:1000 --seed 8
run wbpattern check /dev/mapper/b8 --region 0:${M8:-14}M --ops 0 --initial gen:1000 --seed 8
run wait_clean 9 120
run dmsetup remove wb9
run dmsetup remove wb8
run dmsetup remove o7
i=0
until [ "$(ndirty)" = 0 ]; do i=$((i + 1)); [ $i -lt 120 ] || die "id 7 never drained: $(ndirty)"; sleep 1; done
run wbpattern check /dev/mapper/b7 --region 0:${M7:-14}M --ops 0 --initial gen:1000 --seed 7
run mgr_msg free_cache
echo "three-full OK"
