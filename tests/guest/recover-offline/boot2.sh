# wb-guest: no-module
# writeboost-recover, boot 2, WITHOUT the writeboost module: each refusal
# (a registered device without --map, another disk of the same size, a
# smaller disk, a disk in use) and a dry run change no byte of the cache or
# the disks; then writeboost-recover writes the data back: every flushed
# sector is on the right disk (wbpattern checks each one), the unflushed
# blocks are old or new, nothing else changed. Then the module is loaded:
# resume_cache replays nothing and finds nothing dirty, and the devices
# read their data through the cache. Last, a raw (non-DM) disk: the
# identity the tool computes is the one the kernel registered.
. /wb/tests/lib.sh
set -e
mb=2048
! lsmod | grep -q '^dm_writeboost' || die "the module is loaded"
! dmsetup targets | grep -q writeboost || die "a writeboost target is registered"
run dm_create back1 --table "0 $((12 * mb)) linear $WB_BACKING 0"
run dm_create back2 --table "0 $((12 * mb)) linear $WB_BACKING $((12 * mb))"
run dm_create back3 --table "0 $((12 * mb)) linear $WB_BACKING $((24 * mb))"
run dm_create back4 --table "0 $((12 * mb - 8)) linear $WB_BACKING $((36 * mb))"
M1=1=/dev/mapper/back1
M2=2=/dev/mapper/back2
sums() {
    cat $WB_CACHE /dev/mapper/back1 /dev/mapper/back2 /dev/mapper/back3 /dev/mapper/back4 | md5sum
}
before=$(sums)
# refused <code> <args>: exit 1, says REFUSED (<code>), changes nothing.
refused() {
    _code=$1
    shift
    echo "+ (must be refused: $_code) writeboost-recover $*"
    writeboost-recover "$@" > /tmp/out 2>&1 && _rc=0 || _rc=$?
    cat /tmp/out
    assert_eq "$_rc" 1 "exit status of a refusal ($_code)"
    grep -q "REFUSED ($_code)" /tmp/out || die "not refused with $_code"
    grep -q "refused: nothing was changed" /tmp/out || die "no 'nothing was changed'"
}
refused no-map $WB_CACHE --map $M1
grep -q "the disk with its registered identity is /dev/mapper/back2 (dm-name:back2)" /tmp/out || die "no hint of device 2's disk"
refused identity $WB_CACHE --map $M1 --map 2=/dev/mapper/back3
refused backing-size $WB_CACHE --map $M1 --map 2=/dev/mapper/back4
run dm_create hold --table "0 $((12 * mb)) linear /dev/mapper/back2 0"
refused open $WB_CACHE --map $M1 --map $M2
run dmsetup remove hold
run writeboost-recover $WB_CACHE --map $M1 --map $M2 --dry-run > /tmp/dry
grep -q "dry run: nothing was written" /tmp/dry || { cat /tmp/dry; die "no dry-run summary"; }
grep -q "^  1 " /tmp/dry && grep -q "^  2 " /tmp/dry || { cat /tmp/dry; die "the dry run lists no writes of both devices"; }
sed -n '/^would write/,+3p' /tmp/dry
tail -n 1 /tmp/dry
writeboost-recover $WB_CACHE --map $M1 --map $M2 --dry-run --json > /tmp/dry.json
grep -q '"outcome": "dry-run"' /tmp/dry.json || die "dry-run JSON"
assert_eq "$(sums)" "$before" "checksum of the cache and the disks after the refusals and dry runs"
t0=$(date +%s)
run writeboost-recover $WB_CACHE --map $M1 --map $M2 --progress > /tmp/out
cat /tmp/out
echo "writeboost-recover took $(( $(date +%s) - t0 )) s"
grep -q "the cache is clean (read back: resume replays 0 segments, 0 dirty lines)" /tmp/out || die "not marked clean"
# Every flushed sector, on the right disk.
run wbpattern check /dev/mapper/back1 --region 0:8M --ops 300 --seed 1 --sizes 512,4K,64K --durable 300 --initial zero
run wbpattern check /dev/mapper/back2 --region 0:8M --ops 300 --seed 2 --sizes 512,4K,64K --durable 300 --initial zero
# The unflushed blocks: each old (zero) or new.
dd if=$WB_BACKING bs=4k skip=$((400 * 256)) count=16 iflag=direct of=/tmp/u 2>/dev/null
head -c 4096 /dev/zero > /tmp/z
i=0
while [ $i -lt 16 ]; do
    read_blocks /dev/mapper/back2 $((8 * 256 + i)) 1 /tmp/got
    dd if=/tmp/u of=/tmp/new bs=4k skip=$i count=1 2>/dev/null
    same_as_one_of /tmp/got /tmp/z /tmp/new || die "unflushed block $i of device 2 is neither old nor new: $(sector_summary /tmp/got)"
    i=$((i + 1))
done
# Nothing else changed.
head -c $((4 * 1024 * 1024)) /dev/zero > /tmp/z4
dd if=/dev/mapper/back1 bs=1M skip=8 count=4 iflag=direct of=/tmp/r 2>/dev/null
cmp -s /tmp/r /tmp/z4 || die "device 1's disk changed past the written region"
dd if=/dev/mapper/back2 bs=64k skip=129 count=63 iflag=direct of=/tmp/r 2>/dev/null
head -c $((63 * 65536)) /dev/zero > /tmp/z3
cmp -s /tmp/r /tmp/z3 || die "device 2's disk changed past the written region"
head -c $((12 * 1024 * 1024)) /dev/zero > /tmp/z12
dd if=/dev/mapper/back3 bs=1M count=12 iflag=direct of=/tmp/r 2>/dev/null
cmp -s /tmp/r /tmp/z12 || die "the third disk (not mapped) was written"
run writeboost-check $WB_CACHE
# A rerun has nothing to do.
run writeboost-recover $WB_CACHE --map $M1 --map $M2 > /tmp/out
grep -q "nothing to write: the cache is clean" /tmp/out || { cat /tmp/out; die "a rerun found work"; }
# The module: resume replays nothing (no device needs to exist for it).
run insmod /wb/dm-writeboost.ko
run mgr_create
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
dmesg | grep "cache 1: replayed" | tail -n 1 | grep -q "cache 1: replayed 0 segments" || { klog_tail 5; die "resume replayed segments"; }
assert_eq "$(cache_value 1 nr_dirty_caches)" 0 "dirty lines after resume_cache"
# The live cache holds its device: the tool refuses it.
refused open $WB_CACHE --map $M1 --map $M2 --dry-run
run wb_create wb1 1 /dev/mapper/back1 1
run wb_create wb2 2 /dev/mapper/back2 1
assert_eq "$(cat $WB_SYSFS/devices/1/nr_dirty_caches) $(cat $WB_SYSFS/devices/2/nr_dirty_caches)" "0 0" "dirty lines of the devices"
run wbpattern check /dev/mapper/wb1 --region 0:8M --ops 300 --seed 1 --sizes 512,4K,64K --durable 300 --initial zero
# A raw disk (a loop device, no DM): the tool computes the identity the
# kernel registered for it (disk:loopN:0). Device 3 gets 32 flushed dirty
# lines, is removed (its data stays in the cache), the cache is freed.
head -c $((4 * 1024 * 1024)) /dev/zero > /tmp/raw.img
loopdev=$(losetup -f)
run losetup $loopdev /tmp/raw.img
run wb_create wb3 3 $loopdev 1
dd if=/dev/urandom of=/tmp/r3 bs=4k count=32 2>/dev/null
run dd if=/tmp/r3 of=/dev/mapper/wb3 bs=4k seek=10 oflag=direct conv=fsync 2>/dev/null
assert_eq "$(cat $WB_SYSFS/devices/3/nr_dirty_caches)" 32 "dirty lines of device 3"
run dmsetup remove wb3
run dmsetup remove wb1
run dmsetup remove wb2
run mgr_msg free_cache
run writeboost-recover $WB_CACHE --map 3=$loopdev > /tmp/out
cat /tmp/out
grep -q "^device 3: $loopdev (8192 sectors; registered 8192), identity matches (disk:${loopdev#/dev/}:0)" /tmp/out \
    || die "the identity of the raw disk differs from the kernel's"
grep -q "the cache is clean" /tmp/out || die "device 3's data not written back"
read_blocks $loopdev 10 32 /tmp/got
cmp -s /tmp/got /tmp/r3 || die "device 3's data is not on the raw disk"
run losetup -d $loopdev
# An unreadable cache device: refused (JSON too), saying what failed.
run dm_create cerr --table "0 $(sectors_of $WB_CACHE) error"
refused read-error /dev/mapper/cerr --map 3=$loopdev
grep -q "reading the superblock (sectors 0..8) failed: Input/output error" /tmp/out || die "the failed read is not named"
writeboost-recover /dev/mapper/cerr --map 3=$loopdev --json > /tmp/out && die "an unreadable cache accepted"
grep -q '"outcome": "refused"' /tmp/out || { cat /tmp/out; die "no JSON report of the refusal"; }
run dmsetup remove cerr
echo "recover-offline OK"
