# Change 1, single boot: cache full of parked data of devices 7 and 8 (dead
# disks). Device 9 has nothing in the log; device 10 wrote 2 MiB after the
# fill (its lines are in the log). In the stalled state: unaligned 1 MiB
# writes, a 4 MiB write, discards, overwrites with reads in between, FLUSH
# reaching vda; device 10 must get EIO; read caching on must give EIO; heal
# mid-way while device 9 writes; everything checks after the drain.
. /wb/tests/lib.sh
# Shared setup for breakN scripts. Layout on $WB_BACKING (64 MiB each):
# b7 at 0, b8 at 64M, b9 at 128M, b10 at 192M; record area at 400M.
sz=$((64 * 2048))
rec=$((400 * 2048))
getrec() { dd if=$WB_BACKING bs=512 skip=$(($rec + $1)) count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -1; }
putrec() { echo "$2" | dd of=$WB_BACKING bs=512 seek=$(($rec + $1)) conv=sync,fsync oflag=direct 2>/dev/null; }
vda_flushes() { awk '{print $16}' /sys/block/vda/stat; }
kill_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz error" && dmsetup resume $1; }
heal_disk() { dmsetup suspend $1 && dmsetup load $1 --table "0 $sz linear $WB_BACKING $2" && dmsetup resume $1; }
st() { echo "[$(date +%s)] dirty $(cache_dirty) reloc $(mgr_status_value nr_relocated_lines) rec $(mgr_status_value record_migrated_segment_id) last_mig $(cache_value 1 last_migrated_segment_id) $*"; }
set -e
run small_cache_setup 32
run dm_create b7 --table "0 $sz linear $WB_BACKING 0"
run dm_create b8 --table "0 $sz linear $WB_BACKING $sz"
run dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))"
run dm_create b10 --table "0 $sz linear $WB_BACKING $((3 * sz))"
run wb_create wb7 7 /dev/mapper/b7 1
run wb_create wb8 8 /dev/mapper/b8 1
run wb_create wb9 9 /dev/mapper/b9 1
run wb_create wb10 10 /dev/mapper/b10 1
run dd if=/dev/zero of=/dev/mapper/b9 bs=1M count=16 oflag=direct 2>/dev/null
run mgr_msg allow_migrate 0
run kill_disk b7
run kill_disk b8
run timeout 60 wbpattern fill /dev/mapper/wb7 --region 0:14M --gen 1000 --seed 7
run timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:14M --gen 1000 --seed 8
mkfill J 65536 /tmp/j10
run dd if=/tmp/j10 of=/dev/mapper/wb10 bs=64k count=1 oflag=direct conv=fsync 2>/dev/null
run dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null
run kill_disk b7
run kill_disk b8
run mgr_msg allow_migrate 1
sleep 3
st "parked"
[ "$(cache_dirty)" -ge 7168 ] || echo "SETUP: only $(cache_dirty) dirty lines: the log is not full"
# The expected image of device 9's first 16 MiB.
head -c 16777216 /dev/zero > /tmp/img9
put9() { # put9 <file> <byte offset>: write through wb9 (O_DIRECT, 512-byte units) and into the image
  _n=$(( $(stat -c %s $1) / 512 ))
  dd if=$1 of=/dev/mapper/wb9 bs=512 seek=$(($2 / 512)) count=$_n oflag=direct 2>/tmp/dderr || { cat /tmp/dderr; return 1; }
  dd if=$1 of=/tmp/img9 bs=512 seek=$(($2 / 512)) count=$_n conv=notrunc 2>/dev/null
}
chk9() { # chk9 <dev> <what>
  dd if=$1 of=/tmp/r9 bs=1M count=16 iflag=direct 2>/dev/null
  cmp -s /tmp/r9 /tmp/img9 || { echo "FINDING: $2: $(cmp /tmp/r9 /tmp/img9 | head -1)"; return 1; }
}
head -c 1048576 /dev/urandom > /tmp/a; head -c 4194304 /dev/urandom > /tmp/b; head -c 1536 /dev/urandom > /tmp/c
t0=$(date +%s)
rc=0; put9 /tmp/a 1536 || rc=$?
echo "first write (1 MiB at byte 1536): rc=$rc after $(( $(date +%s) - t0 )) s, dev9 dirty $(cat $WB_SYSFS/devices/9/nr_dirty_caches)"
dmesg | grep "no room" | tail -1
[ $rc = 0 ] || die "first around write failed"
chk9 /dev/mapper/wb9 "wb9 after 1st" || die "wb9 wrong after first around write"
f0=$(vda_flushes)
run put9 /tmp/b 4194304
run put9 /tmp/c 7
run put9 /tmp/c 16775680
run sync
run dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null
f1=$(vda_flushes); echo "vda flushes $f0 -> $f1"
[ $f1 -gt $f0 ] || echo "FINDING: fsync of device 9 after around writes sent no flush to vda"
chk9 /dev/mapper/wb9 "wb9 after mixed" || die "wb9 reads wrong data"
chk9 /dev/mapper/b9 "b9 after mixed" || die "b9 holds wrong data"
# discard of device 9 (nothing cached): passes or fails, but must not hang
rc=0; timeout 60 blkdiscard -o 8388608 -l 1048576 /dev/mapper/wb9 || rc=$?
echo "discard rc=$rc"
if [ $rc = 0 ]; then dd if=/dev/mapper/wb9 of=/tmp/d bs=1M skip=8 count=1 iflag=direct 2>/dev/null; echo "after discard: $(sector_summary /tmp/d | cut -c1-80)"; dd if=/tmp/d of=/tmp/img9 bs=1M seek=8 conv=notrunc 2>/dev/null; fi
# device 10 has lines in the log: EIO expected (at once)
t0=$(date +%s); rc=0
timeout 60 dd if=/tmp/a of=/dev/mapper/wb10 bs=1M count=1 seek=4 oflag=direct 2>/dev/null || rc=$?
echo "device 10 dirty: $(cat $WB_SYSFS/devices/10/nr_dirty_caches)"
echo "device 10 write: rc=$rc after $(( $(date +%s) - t0 )) s"
[ $rc != 0 ] || { echo "device 10 write went through (around?)"; dd if=/tmp/a of=/tmp/a10 bs=1M count=1 2>/dev/null; }
dd if=/dev/mapper/wb10 of=/tmp/r10 bs=64k count=1 iflag=direct 2>/dev/null
cmp -s /tmp/r10 /tmp/j10 || echo "FINDING: device 10 reads $(sector_summary /tmp/r10 | cut -c1-100)"
# read caching on: EIO expected
run mgr_msg read_cache_threshold 1
rc=0; timeout 60 dd if=/tmp/c of=/dev/mapper/wb9 bs=512 seek=100 count=3 oflag=direct 2>/dev/null || rc=$?
echo "device 9 write with read caching on: rc=$rc"
if [ $rc = 0 ]; then echo "write with read caching on accepted (around? see dirty: $(cat $WB_SYSFS/devices/9/nr_dirty_caches))"; dd if=/tmp/c of=/tmp/img9 bs=512 seek=100 count=3 conv=notrunc 2>/dev/null; fi
# reads with read caching on of device 9 (staging), then off again
dd if=/dev/mapper/wb9 of=/dev/null bs=4k count=512 iflag=direct 2>/dev/null
dd if=/dev/mapper/wb9 of=/dev/null bs=4k count=512 iflag=direct 2>/dev/null
run mgr_msg read_cache_threshold 0
st "after rc on/off"
rc=0; put9 /tmp/c 20000 || rc=$?
echo "device 9 write after read caching off again: rc=$rc"
[ $rc = 0 ] || echo "NOTE: device 9 write after read-cache on/off failed"
chk9 /dev/mapper/wb9 "wb9 after rc on/off" || die "wb9 wrong after rc on/off"
# heal mid-way while device 9 writes a stream of overwrites
( i=0; while [ $i -lt 60 ]; do
    head -c 65536 /dev/urandom > /tmp/s$i
    o=$(( (i % 10) * 32768 + 512 ))
    dd if=/tmp/s$i of=/dev/mapper/wb9 bs=512 seek=$((o / 512)) count=128 oflag=direct 2>/dev/null || echo "stream write $i failed"
    echo "$i $o" >> /tmp/stream
    i=$((i + 1)); sleep 0.6
  done ) &
sleep 3
run heal_disk b7 0
run heal_disk b8 $sz
wait
while read -r i o; do dd if=/tmp/s$i of=/tmp/img9 bs=512 seek=$((o / 512)) count=128 conv=notrunc 2>/dev/null; done < /tmp/stream
st "healed"
chk9 /dev/mapper/wb9 "wb9 after heal stream" || die "wb9 wrong after heal"
wait_cache_clean 180 || die "never drained"
st "drained"
chk9 /dev/mapper/wb9 "wb9 after drain" || die "wb9 wrong after drain"
chk9 /dev/mapper/b9 "b9 after drain" || die "b9 wrong after drain"
run wbpattern check /dev/mapper/b7 --region 0:14M --ops 0 --initial gen:1000 --seed 7
run wbpattern check /dev/mapper/b8 --region 0:14M --ops 0 --initial gen:1000 --seed 8
dd if=/dev/mapper/b10 of=/tmp/r10 bs=64k count=1 iflag=direct 2>/dev/null
dd if=/dev/mapper/b10 of=/tmp/r10b bs=1M skip=4 count=1 iflag=direct 2>/dev/null
[ -f /tmp/a10 ] && { cmp -s /tmp/r10b /tmp/a10 || echo "FINDING: device 10's around write lost"; }
cmp -s /tmp/r10 /tmp/j10 || die "device 10's disk after drain: $(sector_summary /tmp/r10 | cut -c1-100)"
run put9 /tmp/a 0
d9=$(cat $WB_SYSFS/devices/9/nr_dirty_caches); echo "dev9 dirty: $d9"
[ "$d9" -gt 0 ] || echo "FINDING: device 9's writes still go around after the drain"
echo "around-mix: done"
