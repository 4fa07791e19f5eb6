# breakF (big variant of lowmem.sh): a 2 GiB cache, ~1.4 GiB of dirty
# lines over 3 devices (index of ~8 MB), headrooms down to 2 MiB. Run with
#   python3 scripts/guest.py --memory-mb 384 --cache-mb 2048 --backing-mb 2048 --test-timeout 1200 run tests/scratch-breakF/lowmem-big.sh
# (The hogs get oom_score_adj 1000, the test shell -1000: an index vmalloc
# of resume_cache under pressure invokes the OOM killer rather than failing
# with ENOMEM; the hogs are what it should kill.)
# breakF: resume_cache / free_cache cycles of a cache with many dirty lines
# (3 devices, ids 1 64 127) while the guest is short of memory (run with
#   python3 scripts/guest.py --memory-mb 384 --cache-mb 512 (256 does not boot: the initramfs is 118 MB) run tests/scratch-breakF/lowmem.sh)
# fio --lockmem (mlock) pins memory until MemAvailable is ~HEADROOM MiB. A resume may
# fail with ENOMEM, but then cleanly (no cache left, devices unbound, the
# next resume with memory works); no oops, no leak across cycles.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
echo -1000 > /proc/self/oom_score_adj
IDS="1 64 127"
SZ=$((640 * 2048))
HOG=
unhog() { [ -n "$HOG" ] && kill $HOG 2>/dev/null; [ -n "$HOG" ] && wait $HOG 2>/dev/null; HOG=; sync; echo 3 > /proc/sys/vm/drop_caches; }
hog() {  # hog <MiB>
    fio --name=hog --ioengine=null --size=1M --rw=read --lockmem=$1M --time_based --runtime=3600 --output=/dev/null >/dev/null 2>&1 &
    HOG=$!
    echo 1000 > /proc/$HOG/oom_score_adj
    sleep 3
}
avail() { sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
i=0
for id in $IDS; do run dm_create back$id --table "0 $SZ linear $WB_BACKING $((i * SZ))"; i=$((i + 1)); done
run cache_setup
for id in $IDS; do run wb_create wb$id $id /dev/mapper/back$id 1; done
for id in $IDS; do
    wbpattern write /dev/mapper/wb$id --region 0:440M --sequential --sizes 1M --ops 440 --seed $id --fsync-every 100 >/dev/null || bad "seq write $id"
    wbpattern write /dev/mapper/wb$id --region 440M:40M --ops 3000 --sizes 4K --align 4096 --seed $((id + 1000)) --fsync-every 3000 >/dev/null || bad "4K write $id"
done
mgr_status_value nr_dirty_caches
mgr_status_value index_bytes
ck() {
    for id in $IDS; do
        wbpattern check /dev/mapper/wb$id --region 0:440M --sequential --sizes 1M --ops 440 --seed $id > /tmp/c 2>&1 || { tail -3 /tmp/c; bad "$1: seq data of $id"; }
        wbpattern check /dev/mapper/wb$id --region 440M:40M --ops 3000 --sizes 4K --align 4096 --seed $((id + 1000)) > /tmp/c 2>&1 || { tail -3 /tmp/c; bad "$1: 4K data of $id"; }
    done
}
ck "before"
D0=$(mgr_status_value nr_dirty_caches)

HOG2=
cycle() { cycle1 "$1"; r=$?; [ -n "$HOG2" ] && { kill $HOG2; wait $HOG2 2>/dev/null; HOG2=; }; return $r; }
cycle1() {  # cycle1 <what>: remove, free, re-create, resume; 0 if resumed
    for id in $IDS; do dmsetup remove wb$id || bad "remove $id ($1)"; done
    mgr_msg switch_to 1
    mgr_msg free_cache || bad "free_cache ($1)"
    # take back what free_cache released, so the resume really is short
    if [ -n "$HEADROOM" ] && [ -n "$HOG" ]; then
        sync; echo 3 > /proc/sys/vm/drop_caches
        h2=$(( $(avail) / 1024 - HEADROOM ))
        if [ $h2 -gt 0 ]; then
            fio --name=hog2 --ioengine=null --size=1M --rw=read --lockmem=${h2}M --time_based --runtime=3600 --output=/dev/null >/dev/null 2>&1 &
            HOG2=$!; echo 1000 > /proc/$HOG2/oom_score_adj; sleep 3
            echo "second hog $h2 MiB: MemAvailable $(avail) kB"
        fi
    fi
    for id in $IDS; do dm_create wb$id --table "0 $SZ writeboost $id /dev/mapper/back$id 0" || bad "create $id ($1)"; done
    if mgr_msg resume_cache $WB_CACHE; then
        for id in $IDS; do
            [ "$(dmsetup status wb$id | cut -d' ' -f4-5)" = "cache_id 1" ] || bad "device $id not bound ($1)"
        done
        [ "$(mgr_status_value nr_dirty_caches)" = "$D0" ] || bad "dirty lines $(mgr_status_value nr_dirty_caches), not $D0 ($1)"
        return 0
    fi
    klog_tail 3
    echo "NOTE: resume refused under pressure ($1)"
    [ ! -e $WB_SYSFS/caches/1 ] || bad "cache 1 in sysfs after a failed resume ($1)"
    for id in $IDS; do
        [ "$(dmsetup status wb$id | cut -d' ' -f4-5)" = "cache_id 0" ] || bad "device $id bound after a failed resume ($1)"
    done
    return 1
}
after_fail() {  # make memory, resume again
    unhog
    mgr_msg resume_cache $WB_CACHE || { klog_tail 3; bad "resume with memory after a failed one ($1)"; }
}

HEADROOM=
echo "=== baseline cycles"
A0=$(avail); echo "MemAvailable $A0 kB"
cycle "baseline" || after_fail "baseline"
A1=$(avail); echo "MemAvailable $A1 kB"

for HEADROOM in 4 1; do
    echo "=== headroom $HEADROOM MiB"
    unhog
    a=$(avail)
    hog=$(( (a / 1024) - HEADROOM ))
    [ $hog -gt 0 ] || { echo "no room to hog"; continue; }
    hog $hog
    echo "hogged $hog MiB, MemAvailable $(avail) kB, hog alive: $(kill -0 $HOG && echo yes)"
    ok=0; fail=0
    for n in 1 2; do
        kill -0 $HOG 2>/dev/null || echo "NOTE: the hog is gone (OOM-killed?)"
        if cycle "headroom $HEADROOM #$n"; then ok=$((ok + 1)); else fail=$((fail + 1)); after_fail "headroom $HEADROOM #$n"; hog $hog; fi
    done
    echo "headroom $HEADROOM: $ok resumed, $fail ENOMEM-refused"
    # I/O under pressure
    for id in $IDS; do
        wbpattern write /dev/mapper/wb$id --region 600M:4M --ops 200 --sizes 4K,64K --seed $((id + 5000)) --gen-base $((HEADROOM * 1000)) --fsync-every 50 >/dev/null || bad "write under pressure $id"
        wbpattern check /dev/mapper/wb$id --region 600M:4M --ops 200 --sizes 4K,64K --seed $((id + 5000)) --gen-base $((HEADROOM * 1000)) >/tmp/c 2>&1 || bad "check under pressure $id"
    done
    D0=$(mgr_status_value nr_dirty_caches)
done
unhog; HEADROOM=
dmesg | grep -i "killed process\|page allocation failure" | tail -5
ck "after the pressure cycles"
cycle "final" || after_fail "final"
A2=$(avail); echo "MemAvailable: start $A0, after baseline $A1, end $A2 kB"
[ $((A0 - A2)) -lt 8192 ] || bad "MemAvailable fell by $((A0 - A2)) kB over the cycles"
ck "end"
for id in $IDS; do dmsetup remove wb$id || bad "remove $id"; done
mgr_msg free_cache || bad "final free_cache"
wb_teardown_all || bad "teardown"
rmmod dm_writeboost || bad "rmmod"
[ $F = 0 ] || die "$F findings"
echo "lowmem OK"
