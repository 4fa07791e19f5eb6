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
SZ=$((160 * 2048))
HOG=
unhog() { [ -n "$HOG" ] && kill $HOG 2>/dev/null; [ -n "$HOG" ] && wait $HOG 2>/dev/null; HOG=; sync; echo 3 > /proc/sys/vm/drop_caches; }
hog() {  # hog <MiB>
    fio --name=hog --ioengine=null --size=1M --rw=read --lockmem=$1M --time_based --runtime=3600 --output=/dev/null >/dev/null 2>&1 &
    HOG=$!
    sleep 3
}
avail() { sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
i=0
for id in $IDS; do run dm_create back$id --table "0 $SZ linear $WB_BACKING $((i * SZ))"; i=$((i + 1)); done
run cache_setup
for id in $IDS; do run wb_create wb$id $id /dev/mapper/back$id 1; done
for id in $IDS; do
    wbpattern write /dev/mapper/wb$id --region 0:100M --sequential --sizes 1M --ops 100 --seed $id --fsync-every 100 >/dev/null || bad "seq write $id"
    wbpattern write /dev/mapper/wb$id --region 100M:40M --ops 3000 --sizes 4K --align 4096 --seed $((id + 1000)) --fsync-every 3000 >/dev/null || bad "4K write $id"
done
mgr_status_value nr_dirty_caches
mgr_status_value index_bytes
ck() {
    for id in $IDS; do
        wbpattern check /dev/mapper/wb$id --region 0:100M --sequential --sizes 1M --ops 100 --seed $id > /tmp/c 2>&1 || { tail -3 /tmp/c; bad "$1: seq data of $id"; }
        wbpattern check /dev/mapper/wb$id --region 100M:40M --ops 3000 --sizes 4K --align 4096 --seed $((id + 1000)) > /tmp/c 2>&1 || { tail -3 /tmp/c; bad "$1: 4K data of $id"; }
    done
}
ck "before"
D0=$(mgr_status_value nr_dirty_caches)

cycle() {  # cycle <what>: remove, free, re-create, resume; 0 if resumed
    for id in $IDS; do dmsetup remove wb$id || bad "remove $id ($1)"; done
    mgr_msg switch_to 1
    mgr_msg free_cache || bad "free_cache ($1)"
    for id in $IDS; do dm_create wb$id --table "0 $SZ writeboost $id /dev/mapper/back$id 0" || bad "create $id ($1)"; done
    if mgr_msg resume_cache $WB_CACHE; then
        for id in $IDS; do
            [ "$(dmsetup status wb$id | cut -d' ' -f4-5)" = "cache_id 1" ] || bad "device $id not bound ($1)"
        done
        [ "$(mgr_status_value nr_dirty_caches)" = "$D0" ] || bad "dirty lines $(mgr_status_value nr_dirty_caches), not $D0 ($1)"
        return 0
    fi
    klog_tail 3
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

echo "=== baseline cycles"
A0=$(avail); echo "MemAvailable $A0 kB"
for n in 1 2 3; do cycle "baseline $n" || after_fail "baseline $n"; done
A1=$(avail); echo "MemAvailable $A1 kB"

for HEADROOM in 48 32 24 16 12 8; do
    echo "=== headroom $HEADROOM MiB"
    unhog
    a=$(avail)
    hog=$(( (a / 1024) - HEADROOM ))
    [ $hog -gt 0 ] || { echo "no room to hog"; continue; }
    hog $hog
    echo "hogged $hog MiB, MemAvailable $(avail) kB, hog alive: $(kill -0 $HOG && echo yes)"
    ok=0; fail=0
    for n in 1 2 3 4; do
        kill -0 $HOG 2>/dev/null || echo "NOTE: the hog is gone (OOM-killed?)"
        if cycle "headroom $HEADROOM #$n"; then ok=$((ok + 1)); else fail=$((fail + 1)); after_fail "headroom $HEADROOM #$n"; hog $hog; fi
    done
    echo "headroom $HEADROOM: $ok resumed, $fail ENOMEM-refused"
    # I/O under pressure
    for id in $IDS; do
        wbpattern write /dev/mapper/wb$id --region 140M:4M --ops 200 --sizes 4K,64K --seed $((id + 5000)) --gen-base $((HEADROOM * 1000)) --fsync-every 50 >/dev/null || bad "write under pressure $id"
        wbpattern check /dev/mapper/wb$id --region 140M:4M --ops 200 --sizes 4K,64K --seed $((id + 5000)) --gen-base $((HEADROOM * 1000)) >/tmp/c 2>&1 || bad "check under pressure $id"
    done
    D0=$(mgr_status_value nr_dirty_caches)
done
unhog
dmesg | grep -i "killed process\|page allocation failure" | tail -5
ck "after the pressure cycles"
for n in 1 2 3; do cycle "final $n" || after_fail "final $n"; done
A2=$(avail); echo "MemAvailable: start $A0, after baseline $A1, end $A2 kB"
[ $((A0 - A2)) -lt 8192 ] || bad "MemAvailable fell by $((A0 - A2)) kB over the cycles"
ck "end"
for id in $IDS; do dmsetup remove wb$id || bad "remove $id"; done
mgr_msg free_cache || bad "final free_cache"
wb_teardown_all || bad "teardown"
rmmod dm_writeboost || bad "rmmod"
[ $F = 0 ] || die "$F findings"
echo "lowmem OK"
