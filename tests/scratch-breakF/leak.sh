# breakF: the error paths of the heap objects built at resume / 2.2 table
# load (engine, record scratch, present snapshot, dirty counts, backing
# table): many refused resumes (device missing, wrong disk, corrupt
# records, not a cache), refused 2.2 tables after the private cache was
# built (wrong backing disk), and successful resume/free cycles; Slab and
# VmallocUsed must not grow (a leaked engine or index shows in vmalloc).
. /wb/tests/lib.sh
F=0
bad() { echo "FINDING: $*"; F=$((F+1)); }
SZ=$((16 * 2048))
mem() { awk '/^(Slab|VmallocUsed|MemAvailable):/ {printf "%s %s ", $1, $2}' /proc/meminfo; }
val() { sed -n "s/^$1: *\([0-9]*\) kB/\1/p" /proc/meminfo; }
run dm_create c1 --table "0 $((64 * 2048)) linear $WB_CACHE 0"
run dm_create c22 --table "0 $((16 * 2048)) linear $WB_CACHE $((64 * 2048))"
run dm_create nc --table "0 $((16 * 2048)) linear $WB_CACHE $((80 * 2048))"
run dm_create cr --table "0 $((16 * 2048)) linear $WB_CACHE $((96 * 2048))"
run dm_create b1 --table "0 $SZ linear $WB_BACKING 0"
run dm_create b2 --table "0 $SZ linear $WB_BACKING $SZ"
run dm_create b3 --table "0 $SZ linear $WB_BACKING $((2 * SZ))"
dd if=/dev/urandom of=/dev/mapper/nc bs=4k count=4 oflag=direct 2>/dev/null
run mgr_create
run mgr_msg format_cache_device /dev/mapper/c1
run mgr_msg format_cache_device /dev/mapper/cr
# corrupt both records of cr (blocks 1 and 2)
dd if=/dev/urandom of=/dev/mapper/cr bs=4k seek=1 count=2 oflag=direct 2>/dev/null
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/c1
run wb_create w127 127 /dev/mapper/b1 1
run wbpattern write /dev/mapper/w127 --region 0:4M --ops 200 --sizes 4K,64K --seed 127 --fsync-every 200
run dmsetup remove w127
run mgr_msg free_cache
# a 2.2 cache with data of b2
dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct 2>/dev/null
run dm_create w22 --table "0 $SZ writeboost /dev/mapper/b2 /dev/mapper/c22"
run wbpattern write /dev/mapper/w22 --region 0:4M --ops 200 --sizes 4K,64K --seed 22 --fsync-every 200
run dmsetup remove w22
sync; echo 3 > /proc/sys/vm/drop_caches
M0="$(mem)"; S0=$(val Slab); V0=$(val VmallocUsed)
echo "before: $M0"
for n in $(seq 1 25); do
    mgr_msg switch_to 1
    mgr_msg resume_cache /dev/mapper/c1 2>/dev/null && bad "resume without device 127"
    dm_create w127 --table "0 $SZ writeboost 127 /dev/mapper/b3 0" >/dev/null
    mgr_msg resume_cache /dev/mapper/c1 2>/dev/null && bad "resume with 127 over the wrong disk"
    dmsetup remove w127
    mgr_msg resume_cache /dev/mapper/nc 2>/dev/null && bad "resume of a non-cache"
    mgr_msg resume_cache /dev/mapper/cr 2>/dev/null && bad "resume with two corrupt records"
    mgr_msg resume_cache /dev/mapper/cr accept_data_loss 2>/dev/null && bad "resume (accept_data_loss) with two corrupt records"
    dmsetup create x22 --table "0 $SZ writeboost /dev/mapper/b3 /dev/mapper/c22" 2>/dev/null && { bad "2.2 table over the wrong backing accepted"; dmsetup remove x22; }
    # and a good cycle
    dm_create w127 --table "0 $SZ writeboost 127 /dev/mapper/b1 0" >/dev/null
    mgr_msg resume_cache /dev/mapper/c1 || bad "good resume ($n)"
    dmsetup remove w127
    mgr_msg free_cache || bad "free ($n)"
    dmsetup create w22 --table "0 $SZ writeboost /dev/mapper/b2 /dev/mapper/c22" >/dev/null || bad "good 2.2 table ($n)"
    dmsetup remove w22
done
klog_tail 12 | grep -v "^device-mapper: ioctl"
sync; echo 3 > /proc/sys/vm/drop_caches; sleep 2
M1="$(mem)"; S1=$(val Slab); V1=$(val VmallocUsed)
echo "after 25 rounds: $M1"
[ $((S1 - S0)) -lt 2048 ] || bad "Slab grew by $((S1 - S0)) kB over 25 rounds"
[ $((V1 - V0)) -lt 2048 ] || bad "VmallocUsed grew by $((V1 - V0)) kB over 25 rounds"
run dm_create w127 --table "0 $SZ writeboost 127 /dev/mapper/b1 0"
run mgr_msg resume_cache /dev/mapper/c1
run wbpattern check /dev/mapper/w127 --region 0:4M --ops 200 --sizes 4K,64K --seed 127
run dm_create w22 --table "0 $SZ writeboost /dev/mapper/b2 /dev/mapper/c22"
run wbpattern check /dev/mapper/w22 --region 0:4M --ops 200 --sizes 4K,64K --seed 22
run dmsetup remove w22
run dmsetup remove w127
run mgr_msg free_cache
wb_teardown_all || bad "teardown"
rmmod dm_writeboost || bad "rmmod"
sync; echo 3 > /proc/sys/vm/drop_caches; sleep 1
echo "after rmmod: $(mem)"
[ $F = 0 ] || die "$F findings"
echo "leak OK"
