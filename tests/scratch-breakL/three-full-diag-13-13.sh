# breakL C (diagnostic variant of three-full.sh): three ids on a 32 MiB cache (31 segments): id 7 paused (o7
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
run timeout 60 wbpattern fill /dev/mapper/wb7 --region 0:${M7:-13}M --gen 1000 --seed 7
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:${M8:-13}M --gen 1000 --seed 8
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
echo "--- id 9 writes 8 MiB into the nearly full log (background), monitored"
st() { echo "t=$(( $(date +%s) - t0 ))s reloc=$(mgr_status_value nr_relocated_lines) seg=$(mgr_status_value 'current segment id') lm=$(mgr_status_value last_migrated_segment_id) rec=$(mgr_status_value record_migrated_segment_id) dirty=$(mgr_status_value nr_dirty_caches) err=$(mgr_status_value error) d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches) prog=[$(tail -c 120 /tmp/w9.err | tr '\r\n' '  ' | sed 's/.*progress/progress/')]"; }
t0=$(date +%s)
( timeout 600 wbpattern write /dev/mapper/wb9 --region 0:8M --ops 2048 --sizes 4K --sequential --seed 9 --gen-base 2000 --fsync-every 256 --print-progress > /tmp/w9.out 2>/tmp/w9.err; echo "WRITER rc=$? at $(( $(date +%s) - t0 )) s" > /tmp/w9.rc ) &
for i in $(seq 1 14); do sleep 6; st; [ -e /tmp/w9.rc ] && break; done
pid=$(pidof wbpattern || true)
echo "wbpattern pid $pid"
for p in $pid; do grep -E "State|voluntary" /proc/$p/status; for t in /proc/$p/task/*; do echo "task $t: $(cat $t/wchan 2>/dev/null) $(grep State $t/status)"; cat $t/stack 2>/dev/null | head -12; done; done
echo "--- a fresh 4 KiB write meanwhile, in the background (must fail with EIO within ~30 s or succeed)"
t1=$(date +%s)
( rc2=0; timeout 60 dd if=/dev/zero of=/dev/mapper/wb9 bs=4k seek=4096 count=1 oflag=direct 2>/tmp/dd.err || rc2=$?; echo "DD rc=$rc2 after $(( $(date +%s) - t1 )) s: $(tail -1 /tmp/dd.err)" > /tmp/dd.rc ) &
for i in $(seq 1 12); do sleep 6; st; [ -e /tmp/dd.rc ] && break; done
cat /tmp/dd.rc 2>/dev/null || echo "DD still blocked after $(( $(date +%s) - t1 )) s (timeout 60 did not end it)"
since | grep -v "^$" | tail -8
for p in $(pidof dd timeout); do echo "pid $p $(cat /proc/$p/cmdline | tr '\0' ' '): $(grep State /proc/$p/status) $(grep SigPnd /proc/$p/status)"; done
echo "--- heal id 8's disk: the writer must finish"
run dmsetup suspend b8
run dmsetup load b8 --table "0 $sz linear $WB_BACKING $sz"
run dmsetup resume b8
for i in $(seq 1 30); do sleep 4; st; [ -e /tmp/w9.rc ] && break; done
cat /tmp/w9.rc 2>/dev/null || echo "writer still not done after heal"
cat /tmp/dd.rc 2>/dev/null || echo "dd still not done after heal"
cat /tmp/w9.out | tail -2
since | grep -v "^$" | tail -8
[ -e /tmp/w9.rc ] || die "writer hung even after the disk healed"
grep -q "rc=0" /tmp/w9.rc || echo "NOTE: writer failed: $(cat /tmp/w9.rc)"
run wait_clean 8 180
run wbpattern check /dev/mapper/b8 --region 0:${M8:-13}M --ops 0 --initial gen:1000 --seed 8
run timeout 200 wbpattern write /dev/mapper/wb9 --region 0:8M --ops 2048 --sizes 4K --sequential --seed 9 --gen-base 2000 --fsync-every 256
run wbpattern check /dev/mapper/wb9 --region 0:8M --ops 2048 --sizes 4K --sequential --seed 9 --gen-base 2000
run wait_clean 9 120
run dmsetup remove wb9
run dmsetup remove wb8
run dmsetup remove o7
i=0
until [ "$(ndirty)" = 0 ]; do i=$((i + 1)); [ $i -lt 120 ] || die "id 7 never drained: $(ndirty)"; sleep 1; done
run wbpattern check /dev/mapper/b7 --region 0:${M7:-13}M --ops 0 --initial gen:1000 --seed 7
echo "three-full-diag done"
