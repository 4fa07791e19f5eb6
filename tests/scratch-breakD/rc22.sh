# breakD: 2.2-form private cache, read caching (clean lines in RAM) and
# large writes over them; then write-around mode over a cache holding
# direct lines.
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
run dm_create c22 --table "0 $((24 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((64 * 2048)) linear $WB_BACKING 0"
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct
R="--region 1M:32M"
run wbpattern fill /dev/mapper/b22 $R --gen 5000 --seed 5
run dm_create w22 --table "0 $((64 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 4 writeback_threshold 0 read_cache_threshold 8"
fio --name=rr --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=1M --size=32M --direct=1 --ioengine=psync --number_ios=3000 --randrepeat=1 --output=/dev/null
dmsetup status w22
P="$R --ops 600 --seed 5 --sizes 4K,64K,72K,1M --align 4K --gen-base 10"
# random reads interleaved with large writes
fio --name=rr2 --filename=/dev/mapper/w22 --rw=randread --bs=4k --offset=1M --size=32M --direct=1 --ioengine=libaio --iodepth=4 --runtime=15 --time_based --output=/dev/null &
run wbpattern write /dev/mapper/w22 $P
wait
wbpattern check /dev/mapper/w22 $P --initial gen:5000 || bad "readcache+large: open"
dmsetup message w22 0 drop_caches || true
run dmsetup suspend w22
run dmsetup resume w22
wbpattern check /dev/mapper/w22 $P --initial gen:5000 || bad "readcache+large: after suspend"
dmsetup status w22
run dmsetup remove w22
writeboost-check /dev/mapper/c22 || bad "writeboost-check"
writeboost-dump /dev/mapper/c22 | head -14
# write-around over it: replayed dirty data readable, large writes go around
run dm_create w22 --table "0 $((64 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 4 writeback_threshold 0 write_around_mode 1"
wbpattern check /dev/mapper/w22 $P --initial gen:5000 || bad "after re-create in write-around"
Q="$R --ops 300 --seed 6 --sizes 4K,64K,1M,512 --align 512 --gen-base 1000"
run wbpattern write /dev/mapper/w22 $Q
# the expected: Q over P; check Q region sectors last writer. Use a combined check:
wbpattern check /dev/mapper/w22 $Q --initial any >/tmp/q 2>&1; tail -3 /tmp/q
dd if=/dev/mapper/w22 of=/tmp/r1 bs=1M skip=1 count=32 iflag=direct 2>/dev/null
run dmsetup suspend w22
run dmsetup resume w22
dd if=/dev/mapper/w22 of=/tmp/r2 bs=1M skip=1 count=32 iflag=direct 2>/dev/null
cmp /tmp/r1 /tmp/r2 || bad "write-around: content changed across suspend/resume"
run dmsetup remove w22
run dm_create w22 --table "0 $((64 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 4 writeback_threshold 0 write_around_mode 1"
dd if=/dev/mapper/w22 of=/tmp/r3 bs=1M skip=1 count=32 iflag=direct 2>/dev/null
cmp /tmp/r1 /tmp/r3 || bad "write-around: content changed across re-create (replay brought back older data)"
run dmsetup remove w22
[ $F = 0 ] || die "$F findings"
echo "rc22 OK"
