# breakF: the 2.2 form, whose table load formats a zeroed cache device and
# builds a private cache (engine, record scratch, backing file table) deep
# in the table load. Loops of create (format) / write / remove / re-create
# (replay) / reload / check; four private caches at once plus a 2013 cache
# (id 127, devices 126 and 127) next to them; a 2.2 cache taken over by the
# manager as device 1 and back; failing formats (tiny cache device, a cache
# device that fails writes, a read-only one).
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
P=wbpattern
CS=$((12 * 2048))      # each private cache: 12 MiB
BS=$((32 * 2048))      # each backing: 32 MiB
for i in 0 1 2 3 4 5; do
    run dm_create c$i --table "0 $CS linear $WB_CACHE $((i * CS))"
    run dm_create b$i --table "0 $BS linear $WB_BACKING $((i * BS))"
done
zero() { dd if=/dev/zero of=/dev/mapper/c$1 bs=512 count=1 oflag=direct 2>/dev/null; }
mk22() { dmsetup create w$1 --table "0 $BS writeboost /dev/mapper/b$1 /dev/mapper/c$1 $2" && dmsetup mknodes w$1; }
wr() { $P write /dev/mapper/w$1 --region 0:6M --ops 150 --sizes 512,4K,64K,256K --seed $(($1 + 10)) --gen-base $2 --fsync-every 150 >/dev/null || bad "write w$1 gen $2"; }
ck() { $P check /dev/mapper/$3$1 --region 0:6M --ops 150 --sizes 512,4K,64K,256K --seed $(($1 + 10)) --gen-base $2 > /tmp/ck 2>&1 || { tail -3 /tmp/ck; bad "check $3$1 gen $2 ($4)"; }; }

echo "=== loops on one private cache"
for n in $(seq 1 12); do
    [ $((n % 3)) = 1 ] && zero 0
    mk22 0 "2 writeback_threshold 0" || { klog_tail 3; bad "create w0 (loop $n)"; continue; }
    wr 0 $((n * 1000))
    ck 0 $((n * 1000)) w "loop $n, written"
    dmsetup remove w0 || bad "remove w0 (loop $n)"
    mk22 0 "4 update_sb_record_interval 1 sync_data_interval 1" || { klog_tail 3; bad "re-create w0 (loop $n)"; continue; }
    ck 0 $((n * 1000)) w "loop $n, replayed"
    echo "0 $BS writeboost /dev/mapper/b0 /dev/mapper/c0 2 writeback_threshold 100" | dmsetup load w0 || bad "reload w0"
    dmsetup suspend w0 && dmsetup resume w0 || bad "suspend/resume w0"
    ck 0 $((n * 1000)) w "loop $n, reloaded"
    if [ $((n % 4)) = 0 ]; then
        dmsetup message w0 0 drop_caches || bad "drop_caches (loop $n)"
        ck 0 $((n * 1000)) b "loop $n, backing after drop_caches"
    fi
    dmsetup remove w0 || bad "remove w0 (loop $n, end)"
done

echo "=== four private caches and a 2013 cache"
run mgr_create
zero 5
run mgr_msg format_cache_device /dev/mapper/c5
run mgr_msg switch_to 127
run mgr_msg resume_cache /dev/mapper/c5
run dm_create wb127 --table "0 $((BS / 2)) writeboost 127 /dev/mapper/b5 127"
run dm_create wb126 --table "0 $((BS / 2)) writeboost 126 /dev/mapper/b4 127"
for i in 0 1 2 3; do zero $i; mk22 $i "" || { klog_tail 3; bad "create w$i"; }; done
for i in 0 1 2 3; do wr $i 50000 & done
$P write /dev/mapper/wb127 --region 0:6M --ops 150 --seed 127 --fsync-every 10 >/dev/null &
$P write /dev/mapper/wb126 --region 0:6M --ops 150 --seed 126 --fsync-every 10 >/dev/null &
for k in $(seq 1 20); do mgr_msg commit_super_block; dmsetup status w2 >/dev/null; done
wait
for i in 0 1 2 3; do ck $i 50000 w "parallel"; done
$P check /dev/mapper/wb127 --region 0:6M --ops 150 --seed 127 >/tmp/ck 2>&1 || bad "check wb127"
$P check /dev/mapper/wb126 --region 0:6M --ops 150 --seed 126 >/tmp/ck 2>&1 || bad "check wb126"
for i in 0 1 2 3; do dmsetup remove w$i || bad "remove w$i"; done
for i in 3 2 1 0; do mk22 $i "" || { klog_tail 3; bad "re-create w$i"; }; done
for i in 0 1 2 3; do ck $i 50000 w "parallel, replayed"; done
for i in 0 1 2 3; do dmsetup remove w$i || bad "remove w$i (2)"; done

echo "=== a 2.2 cache resumed by the manager as device 1, and back"
run dm_create wb1 --table "0 $BS writeboost 1 /dev/mapper/b1 0"
run mgr_msg switch_to 1
mgr_msg resume_cache /dev/mapper/c1 || { klog_tail 3; bad "resume of a 2.2 cache by the manager"; }
assert_eq "$(dmsetup status wb1 | cut -d' ' -f4-5)" "cache_id 1" "device 1 bound to the 2.2 cache"
ck 1 50000 wb "2.2 cache under the manager"
$P write /dev/mapper/wb1 --region 0:6M --ops 150 --sizes 512,4K,64K,256K --seed 11 --gen-base 60000 --fsync-every 150 >/dev/null || bad "write wb1"
dmsetup remove wb1 || bad "remove wb1"
mgr_msg free_cache || bad "free cache 1"
mk22 1 "" || { klog_tail 3; bad "2.2 table over a cache the manager used"; }
ck 1 60000 w "back to the 2.2 form"
dmsetup message w1 0 drop_caches || bad "drop_caches w1"
dmsetup remove w1

echo "=== failing formats"
run dm_create tiny --table "0 2048 linear $WB_CACHE $((100 * 2048))"
dd if=/dev/zero of=/dev/mapper/tiny bs=512 count=1 oflag=direct 2>/dev/null
for k in 1 2 3; do
    dmsetup create wt --table "0 $BS writeboost /dev/mapper/b2 /dev/mapper/tiny" && { bad "2.2 table on a 1 MiB cache accepted"; dmsetup remove wt; }
    klog_tail 2
    mgr_msg format_cache_device /dev/mapper/tiny && bad "format of a 1 MiB cache accepted"
    klog_tail 1
done
run dm_create errc --table "0 $CS error"
for k in 1 2 3; do
    dmsetup create wt --table "0 $BS writeboost /dev/mapper/b2 /dev/mapper/errc" && { bad "2.2 table on an error device accepted"; dmsetup remove wt; }
    klog_tail 2
    mgr_msg format_cache_device /dev/mapper/errc && bad "format of an error device accepted"
    klog_tail 1
done
# writes fail, reads work (zeroed first sector): a format that fails midway
run dm_create halfc --table "0 8 linear $WB_CACHE $((110 * 2048))
8 $((CS - 8)) error"
dd if=/dev/zero of=/dev/mapper/halfc bs=512 count=1 oflag=direct 2>/dev/null
for k in 1 2 3; do
    dmsetup create wt --table "0 $BS writeboost /dev/mapper/b2 /dev/mapper/halfc" && { bad "2.2 table on a half-error device accepted"; dmsetup remove wt; }
    klog_tail 2
done
run dm_create roc --readonly --table "0 $((8 * 2048)) linear $WB_CACHE $((112 * 2048))"
for k in 1 2; do
    mgr_msg format_cache_device /dev/mapper/roc && bad "format of a read-only device accepted"
    klog_tail 1
    dmsetup create wt --table "0 $BS writeboost /dev/mapper/b2 /dev/mapper/roc" && { bad "2.2 table on a read-only device accepted"; dmsetup remove wt; }
    klog_tail 2
done
dmsetup remove wt 2>/dev/null
wb_teardown_all || bad "teardown"
rmmod dm_writeboost || bad "rmmod"
[ $F = 0 ] || die "$F findings"
echo "c22-loops OK"
