# breakE: 2.2-form private cache reloaded (same cache device, other
# tunables) and suspended/resumed while large writes run; the data reads
# back; remove right after; re-create replays it; rmmod.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
run dm_create fcache --table "0 $((32 * 2048)) linear $WB_CACHE 0"
run dm_create b1 --table "0 $((128 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/fcache bs=512 count=1 oflag=direct
# the backing region starts zeroed (an earlier test of the boot may have left data)
run dd if=/dev/zero of=/dev/mapper/b1 bs=1M count=102 oflag=direct
T="0 $((128 * 2048)) writeboost /dev/mapper/b1 /dev/mapper/fcache"
run dm_create w22 --table "$T 2 writeback_threshold 0"
P="--region 1M:100M --ops 1500 --seed 21 --sizes 4K,64K,100K,1M --align 4K --jobs 3"
wbpattern write /dev/mapper/w22 $P > /tmp/w.out 2>&1 &
wp=$!
i=0
while kill -0 $wp 2>/dev/null && [ $i -lt 20 ]; do
    echo "$T 2 writeback_threshold $((i % 2 * 50))" | dmsetup load w22 || bad "load $i"
    dmsetup suspend w22 || bad "suspend $i"
    dmsetup resume w22 || bad "resume $i"
    i=$((i+1)); sleep 0.3
done
wait $wp || { tail -3 /tmp/w.out; bad "writer failed"; }
dmsetup table w22
wbpattern check /dev/mapper/w22 $P --initial zero || bad "check after reloads"
run dmsetup remove w22
run dm_create w22 --table "$T 2 writeback_threshold 0"
wbpattern check /dev/mapper/w22 $P --initial zero || bad "check after re-create (replay)"
run dmsetup remove w22
rmmod dm_writeboost || bad "rmmod"
dmesg | grep -iE "warn|bug|hung|blocked|oops" | tail -5
[ $F = 0 ] || die "$F findings"
echo "c22-reload OK"
