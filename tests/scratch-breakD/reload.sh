# breakD: suspend/resume and table reloads of the device while large
# writes (several jobs) run; then verify; then remove while writes run.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
run cache_setup
run wb_create wb1 1 $WB_BACKING 1 $((256 * 2048))
P="--region 1M:96M --ops 3000 --seed 3 --sizes 4K,64K,100K,1M --align 4K --jobs 3"
wbpattern write /dev/mapper/wb1 $P > /tmp/w.out 2>&1 &
wp=$!
i=0
while kill -0 $wp 2>/dev/null && [ $i -lt 30 ]; do
    dmsetup suspend wb1 || bad "suspend $i"
    sleep 0.2
    dmsetup resume wb1 || bad "resume $i"
    if [ $((i % 3)) = 0 ]; then wb_set_cache wb1 1 || bad "reload $i"; fi
    mgr_msg flush_current_buffer
    i=$((i+1)); sleep 0.3
done
wait $wp || { cat /tmp/w.out; bad "writer failed"; }
tail -1 /tmp/w.out
wbpattern check /dev/mapper/wb1 $P --initial zero || bad "check after suspends/reloads"
# detach while large writes run
wbpattern write /dev/mapper/wb1 --region 100M:32M --ops 300 --seed 4 --sizes 1M,64K --jobs 2 > /tmp/w2.out 2>&1 &
wp=$!
sleep 1
run mgr_msg allow_migrate 1
wb_set_cache wb1 0 || bad "detach during writes"
wait $wp || { cat /tmp/w2.out; echo "writer 2 failed (ok if it saw no cache?)"; }
wbpattern check /dev/mapper/wb1 --region 100M:32M --ops 300 --seed 4 --sizes 1M,64K --jobs 2 --initial zero || bad "check after detach"
wbpattern check /dev/mapper/wb1 $P --initial zero || bad "P after detach"
wbpattern check $WB_BACKING $P --initial zero || bad "P on backing after detach"
run wb_set_cache wb1 1
wbpattern write /dev/mapper/wb1 --region 140M:32M --ops 300 --seed 8 --sizes 1M,64K,4K > /tmp/w3.out 2>&1 &
wp=$!
sleep 1
dmsetup remove wb1; echo "remove rc $? (busy expected)"
wait $wp
dmesg | grep -iE "warn|bug|hung" | tail -3
[ $F = 0 ] || die "$F findings"
echo "reload OK"
