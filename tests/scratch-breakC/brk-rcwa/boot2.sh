. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
run dm_create w22 --table "0 $((24 * 2048)) writeboost /dev/mapper/b22 /dev/mapper/c22 2 read_cache_threshold 4"
dmsetup status w22
# Expected: the seed-9 stream over (the first stream over gen 1 / gen 2).
# Build the expectation on a scratch file: gen1, then gen2 on 0:2M, stream 1, stream 2.
run dd if=/dev/zero of=/tmp/ref bs=1M count=8 2>/dev/null
run wbpattern fill /tmp/ref --region 0:8M --gen 1
run wbpattern fill /tmp/ref --region 0:2M --gen 2
run wbpattern write /tmp/ref --region 0:8M --ops 600 --sizes 512,4K,8K,4K --align 512 --gen-base 100
run wbpattern write /tmp/ref --region 0:8M --ops 100 --seed 9 --sizes 512,4K --align 512 --gen-base 1000
dd if=/dev/mapper/w22 of=/tmp/got bs=1M count=8 iflag=direct 2>/dev/null
cmp /tmp/ref /tmp/got || { cmp -l /tmp/ref /tmp/got | head; cmp -l /tmp/ref /tmp/got | wc -l; die "data after replay differs"; }
run dmsetup message w22 0 drop_caches
dd if=/dev/mapper/b22 of=/tmp/got bs=1M count=8 iflag=direct 2>/dev/null
cmp /tmp/ref /tmp/got || die "backing after drop_caches differs"
run dmsetup remove w22
echo "brk-rcwa OK"
