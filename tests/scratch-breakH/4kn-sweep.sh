# breakH: 4Kn cache device (dm-linear over loop -b 4096): sweep of
# O_DIRECT reads of every offset class and size (to 260 KiB) of data on
# the cache device, with partially dirty lines (512 B writes after a
# replay, over backing data); reads racing overwrites; bounced reads while
# the cache device fails (dm-error) and while it is suspended under a
# suspend of the device; the 2.2 form.
. /wb/tests/lib.sh
set -e
head -c $((64 * 1024 * 1024)) /dev/zero > /tmp/c.img
run /usr/sbin/losetup -b 4096 -f /tmp/c.img
L=$(/usr/sbin/losetup -a | grep c.img | cut -d: -f1)
CS=$(sectors_of $L)
run dm_create c4k --table "0 $CS linear $L 0"
assert_eq "$(blockdev --getss /dev/mapper/c4k)" 4096 "lbs of c4k"
SZ=$((64 * 2048))
B=1048576          # region: bytes 1 MiB .. 3 MiB of the device
RL=2097152
# rd <dev> <byte off> <bytes> <out>: one O_DIRECT read
if dd if=/dev/zero of=/tmp/t bs=512 count=1 iflag=skip_bytes skip=0 2>/dev/null; then
    rd() { dd if=$1 of=$4 bs=$3 count=1 skip=$2 iflag=direct,skip_bytes 2>/tmp/rderr; }
    rf() { dd if=$1 of=$4 bs=$3 count=1 skip=$2 iflag=skip_bytes 2>/dev/null; }
    echo "using dd skip_bytes"
else
    die "busybox dd without skip_bytes"
fi

run mgr_create
run mgr_msg format_cache_device /dev/mapper/c4k
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/c4k
run wb_create wb1 1 $WB_BACKING 1 $SZ
D=/dev/mapper/wb1
# backing contents as reference start: random garbage on vda region first
dd if=/dev/urandom of=/tmp/bk bs=64k count=32 2>/dev/null
run dd if=/tmp/bk of=$WB_BACKING bs=64k seek=16 oflag=direct conv=notrunc 2>/dev/null
cp /tmp/bk /tmp/ref
dd if=/dev/urandom of=/tmp/d bs=64k count=16 2>/dev/null
# first MiB of the region: 64 KiB direct writes; 2nd half: 4 KiB writes of
# only every other 4 KiB block (the rest stays backing data)
run xfs_io -d -c "pwrite -q -b 65536 -i /tmp/d -s 0 $B 1048576" -c fsync $D
dd if=/tmp/d of=/tmp/ref bs=64k count=16 conv=notrunc 2>/dev/null
i=0
while [ $i -lt 128 ]; do
    o=$((1048576 + i * 8192))
    xfs_io -d -c "pwrite -q -i /tmp/d -s $((i*4096)) $((B + o)) 4096" $D
    dd if=/tmp/d of=/tmp/ref bs=4096 skip=$i seek=$((o/4096)) count=1 conv=notrunc 2>/dev/null
    i=$((i+1))
done
sync
replay() {
    run dmsetup remove wb1
    run mgr_msg free_cache
    run wb_create wb1 1 $WB_BACKING 0 $SZ
    run mgr_msg switch_to 1
    run mgr_msg resume_cache /dev/mapper/c4k
}
replay
# 512 B and 1.5 KiB writes at odd sectors everywhere (new partial lines,
# newer segment), then a second replay
dd if=/dev/urandom of=/tmp/e bs=64k count=1 2>/dev/null
for o in 512 5120 9728 70144 131584 1049088 1053696 1060352 1122816 1536000 2095104; do
    xfs_io -d -c "pwrite -q -i /tmp/e -s 0 $((B + o)) 1536" $D
    dd if=/tmp/e of=/tmp/ref bs=512 seek=$((o/512)) count=3 conv=notrunc 2>/dev/null
done
xfs_io -d -c fsync $D
replay
echo "dirty: $(cat $WB_SYSFS/caches/1/nr_dirty_caches)"
# full compare first (aligned)
dd if=$D of=/tmp/all bs=64k skip=16 count=32 iflag=direct || echo "aligned read error"; ls -l /tmp/all /tmp/ref
cmp /tmp/all /tmp/ref || die "aligned read of the region differs"
bad=0; n=0
for off in 0 512 1024 3584 4096 4608 7680 61440 65024 1048064 1049088 1052160 1536512; do
    for len in 512 1024 1536 3584 4096 4608 7680 8192 8704 28672 57344 57856 58368 61440 64512 65536 66048 131584 200704 262656; do
        [ $((off + len)) -le $RL ] || continue
        n=$((n+1))
        if ! rd $D $((B + off)) $len /tmp/got; then
            echo "read off=$off len=$len failed: $(cat /tmp/rderr)"; bad=$((bad+1)); continue
        fi
        rf /tmp/ref $off $len /tmp/want
        if ! cmp -s /tmp/got /tmp/want; then
            echo "WRONG off=$off len=$len got $(sector_summary /tmp/got | cut -c1-120)"; bad=$((bad+1))
        fi
    done
done
echo "sweep: $n reads, $bad bad"
[ $bad = 0 ] || die "sweep had $bad bad reads"
dmesg | grep "read of the cache device" && die "bounce failed"

# ---- reads racing overwrites: 64 KiB at 1 MiB+8 MiB alternately AA/BB
R=$((9 * 1048576))
run xfs_io -d -c "pwrite -q -S 0xaa -b 65536 $R 65536" -c fsync $D
( j=0; while [ $j -lt 150 ]; do
    xfs_io -d -c "pwrite -q -S 0xbb -b 65536 $R 65536" $D
    xfs_io -d -c "pwrite -q -S 0xaa -b 512 $R 65536" $D
    xfs_io -d -c "pwrite -q -S 0xbb -b 4096 $R 65536" $D
    xfs_io -d -c "pwrite -q -S 0xaa -b 65536 $R 65536" $D
    j=$((j+1)); done; echo wdone > /tmp/wdone ) &
rbad=0; k=0
while [ ! -f /tmp/wdone ] && [ $k -lt 1500 ]; do
    s=$(( (k * 7) % 120 ))
    len=$(( ((k % 9) + 1) * 512 ))
    rd $D $((R + s * 512)) $len /tmp/g || { echo "race read failed off $s len $len: $(cat /tmp/rderr)"; rbad=$((rbad+1)); }
    v=$(od -An -v -tx1 -w512 /tmp/g | awk '{v=$1; for(i=2;i<=NF;i++) if($i!=v){v="mixed";break}; print v}' | sort -u | tr '\n' ' ')
    for x in $v; do case $x in aa|bb) ;; *) echo "race read got $x (off $s len $len)"; rbad=$((rbad+1));; esac; done
    k=$((k+1))
done
wait
echo "race: $k reads, $rbad bad"
[ $rbad = 0 ] || die "race reads bad"

# ---- make R's data live on the cache device (replay) then fail the cache device
run xfs_io -d -c "pwrite -q -S 0xcc -b 65536 $R 65536" -c fsync $D
replay
rd $D $((R + 512)) 512 /tmp/g || die "read before failing"
echo "0 $CS error" | dmsetup load c4k
run dmsetup suspend c4k
run dmsetup resume c4k
if rd $D $((R + 1024)) 1536 /tmp/g; then
    echo "bounced read with a failed cache device returned: $(sector_summary /tmp/g)"
    die "read from failed cache device succeeded"
else
    echo "bounced read failed as expected: $(cat /tmp/rderr | head -1)"
fi
dmesg | grep "read of the cache device" | tail -1
echo "0 $CS linear $L 0" | dmsetup load c4k
run dmsetup suspend c4k
run dmsetup resume c4k
rd $D $((R + 1024)) 1536 /tmp/g || die "read after cache device back failed"
od -An -tx1 /tmp/g | tr ' ' '\n' | grep -v '^$' | sort -u | tr '\n' ' '; echo
echo "status: $(dmsetup status wb1)"

# ---- cache device suspended under bounced reads + suspend of wb1
run dmsetup suspend c4k
( rd $D $((R + 2560)) 2048 /tmp/g2; echo "rc $?" > /tmp/r2 ) &
( rd $D $((R + 30720)) 40960 /tmp/g3; echo "rc $?" > /tmp/r3 ) &
sleep 1
( dmsetup suspend wb1; echo "rc $?" > /tmp/s1 ) &
sleep 2
[ -f /tmp/r2 ] && echo "read finished while the cache device was suspended?: $(cat /tmp/r2)"
[ -f /tmp/s1 ] && echo "suspend of wb1 finished while reads are held: $(cat /tmp/s1)"
run dmsetup resume c4k
i=0; while [ ! -f /tmp/s1 ] && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done
[ -f /tmp/s1 ] || die "suspend of wb1 hangs after c4k resume"
run dmsetup resume wb1
wait
echo "r2 $(cat /tmp/r2) r3 $(cat /tmp/r3) s1 $(cat /tmp/s1)"
od -An -tx1 /tmp/g2 /tmp/g3 | tr ' ' '\n' | grep -v '^$' | sort -u | tr '\n' ' '; echo

# ---- remove the device right after launching bounced reads (deferred)
( k=0; while [ $k -lt 200 ]; do rd $D $((R + (k % 100) * 512)) 1024 /tmp/g4 2>/dev/null || break; k=$((k+1)); done; echo "reader stopped at $k" ) &
usleep 300000
dmsetup remove --deferred wb1 || echo "deferred remove refused"
wait
dmsetup info wb1 >/dev/null 2>&1 && { echo "wb1 still exists"; dmsetup remove wb1; }
run mgr_msg switch_to 1
run mgr_msg free_cache
run dmsetup remove writeboost-mgr

# ---- 2.2 form on c4k
dd if=/dev/zero of=/dev/mapper/c4k bs=4k count=1 oflag=direct 2>/dev/null
run dm_create wb22 --table "0 $SZ writeboost $WB_BACKING /dev/mapper/c4k"
run xfs_io -d -c "pwrite -q -b 65536 -i /tmp/d -s 0 $B 1048576" -c fsync /dev/mapper/wb22
run dmsetup remove wb22
run dm_create wb22 --table "0 $SZ writeboost $WB_BACKING /dev/mapper/c4k"
bad=0
for off in 512 3584 4608 61440; do for len in 512 4608 57856 66048 131584; do
    rd /dev/mapper/wb22 $((B + off)) $len /tmp/got || { echo "2.2 read failed $off $len"; bad=$((bad+1)); continue; }
    rf /tmp/d $off $len /tmp/want
    cmp -s /tmp/got /tmp/want || { echo "2.2 WRONG $off $len"; bad=$((bad+1)); }
done; done
echo "2.2 sweep bad=$bad"
run dmsetup remove wb22
run dmsetup remove c4k
run /usr/sbin/losetup -d $L
[ $bad = 0 ] || die "2.2 sweep"
echo "4kn-sweep done"
