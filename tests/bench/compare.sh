# Side-by-side benchmark, run in one guest boot by scripts/bench.sh (which
# prepends the BENCH_* settings). Not a test: it measures, it does not judge.
#
# Devices (see Documentation/performance.md):
#   /dev/ram0  RAM disk (brd, sized on the kernel command line): the cache
#              device of the MaxSSD, sequential and mixed-size rows
#   /dev/vda   slow disk (QEMU throttle, HDD-like): the backing device
#   /dev/vdb   fast disk (QEMU throttle): its first BENCH_SUS_CACHE_MB are
#              the cache of the sustained runs and of the full-log resume;
#              the 8 MiB after them head the 64 GiB sparse cache
#   /dev/vdc   raw output disk: a tar of /tmp/bench, written after every
#              section; the host unpacks it into build/bench/
#
# Every fio run writes <name>.json (fio's JSON) and <name>.stat (/proc/stat
# and the slow disk's /sys/block/vda/stat before and after); the sustained
# runs also <name>_iops.1.log (fio, 1 s averages) and <name>.samples (once a
# second: uptime | user device stat | slow disk stat | cache occupancy).
# Scalar results go to results.txt ("key value"). The host does the
# arithmetic (tests/bench/report.py).
. /wb/tests/lib.sh
RT=${BENCH_RUNTIME:-10}
SUS_RT=${BENCH_SUSTAINED_S:-$((RT * 4))}
SUS_MB=${BENCH_SUS_CACHE_MB:-128}
ROUNDS=${BENCH_ROUNDS:-2}
REPEAT=${BENCH_REPEAT:-2}
OUT=/tmp/bench
OUTDEV=/dev/vdc
RAM=/dev/ram0
SLOW=$WB_BACKING
FAST=$WB_CACHE
mkdir -p $OUT
: > $OUT/results.txt

up() { cut -d' ' -f1 /proc/uptime; }
res() { echo "$1 $2" >> $OUT/results.txt; echo "BENCH $1 $2"; }
say() { echo "BENCH-INFO $*"; }
save() { tar -cf $OUTDEV -C $OUT . 2>/dev/null; sync; }
dm_minor() { dmsetup info -c --noheadings -o minor "$1" 2>/dev/null | tr -d ' '; }

# Before/after snapshot of the CPU and the slow disk.
snap() {
    echo "$1 $(up)"
    echo "$1-cpu $(head -1 /proc/stat)"
    echo "$1-slow $(cat /sys/block/vda/stat)"
}

# bench_fio <name> <device> <fio arguments>: one fio job, direct, libaio.
bench_fio() {
    _n=$1; _d=$2; shift 2
    if [ ! -b "$_d" ]; then
        # A missing /dev/mapper node would silently become a tmpfs file.
        echo "$_d is not a block device" > $OUT/$_n.err
        say "$_n: $_d missing"
        return 1
    fi
    snap before > $OUT/$_n.stat
    fio --name=$_n --filename=$_d --direct=1 --ioengine=libaio "$@" \
        --output-format=json --output=$OUT/$_n.json > $OUT/$_n.err 2>&1
    _rc=$?
    snap after >> $OUT/$_n.stat
    [ $_rc = 0 ] || say "$_n: fio failed ($_rc): $(tail -2 $OUT/$_n.err)"
    say "$_n done ($(up) s)"
    return $_rc
}

zap() { dd if=/dev/zero of="$1" bs=1M count=${2:-8} oflag=direct 2>/dev/null; }

# --- the caches, each over backing $SLOW, as device /dev/mapper/t --------
# up_<kind> <cache device>; down_<kind>. Each run starts from an empty cache.
SIZE=$(sectors_of $SLOW)
up_lin() { dm_create t --table "0 $(sectors_of $1) linear $1 0"; }
down_lin() { dmsetup remove t; }
up_wb() {
    zap $1 1
    dmsetup info writeboost-mgr >/dev/null 2>&1 || mgr_create || return 1
    mgr_msg format_cache_device $1 && mgr_msg switch_to 1 && mgr_msg resume_cache $1 || return 1
    wb_create t 1 $SLOW 1 $SIZE
}
down_wb() {
    # Dirty data is dropped with the cache (the next up formats it).
    dmsetup remove t
    mgr_msg switch_to 1; mgr_msg free_cache
}
up_wc() {
    zap $1
    dm_create t --table "0 $SIZE writecache s $SLOW $1 4096 0"
}
down_wc() { dmsetup remove t; }
up_dc() {
    # smq, writeback, 32 KiB blocks; metadata: the first 8 MiB.
    _c=$(sectors_of $1)
    dm_create cmeta --table "0 16384 linear $1 0" &&
    dm_create cdata --table "0 $((_c - 16384)) linear $1 16384" || return 1
    zap /dev/mapper/cmeta
    dm_create t --table "0 $SIZE cache /dev/mapper/cmeta /dev/mapper/cdata $SLOW 64 1 writeback smq 0"
}
down_dc() { dmsetup remove t; dmsetup remove cdata; dmsetup remove cmeta; }

status_of() {
    case $1 in
        wb) dmsetup status writeboost-mgr; dmsetup status t ;;
        *) dmsetup status t ;;
    esac
}

# The MaxSSD, sequential and mixed-size rows. A configuration is set up on
# an empty cache and runs the row's job $REPEAT times back to back (all of
# them together write less than the cache holds: no migration, no
# write-back), each capped at $RT / $REPEAT seconds. The rows run $ROUNDS
# times, each round every configuration in turn; the report takes the best
# of the $ROUNDS x $REPEAT runs (the host is shared: TCG runs slower
# whenever other work takes its CPUs).
row_args() {
    case $1 in
        r4k32) echo "--rw=randwrite --bs=4k --iodepth=32 --size=256M --io_size=64M" ;;
        r4k1) echo "--rw=randwrite --bs=4k --iodepth=1 --size=256M --io_size=32M" ;;
        r64k) echo "--rw=randwrite --bs=64k --iodepth=8 --size=256M --io_size=96M" ;;
        r128k) echo "--rw=randwrite --bs=128k --iodepth=8 --size=256M --io_size=96M" ;;
        # Together below dm-writecache's high watermark (50 % of the cache).
        seqw) echo "--rw=write --bs=1M --iodepth=8 --size=120M --offset=$(( ($2 - 1) * 120 ))M" ;;
        # Uncached: regions no run writes (the sustained working set is
        # below 512 MiB), another one for each repeat.
        seqr) echo "--rw=read --bs=1M --iodepth=8 --size=128M --offset=$(( 512 + ($2 - 1) * 128 ))M" ;;
    esac
}
# one <kind|raw:DEV> <row> <round>: set up <kind> on the RAM disk, run the
# row $REPEAT times (<kind>_<row>_<n>, n = 1.. over all rounds), tear down.
one() {
    _k=$1; _r=$2
    case $_k in
        raw:*) _dev=${_k#raw:} ;;
        *)
            if ! up_$_k $RAM; then
                say "$_k: setup failed: $(dmesg | tail -1)"; down_$_k 2>/dev/null; return 1
            fi
            _dev=/dev/mapper/t ;;
    esac
    for _i in $(seq 1 $REPEAT); do
        _n=${4:-$_k}_${_r}_$(( ($3 - 1) * REPEAT + _i ))
        bench_fio $_n $_dev $(row_args $_r $_i) --runtime=$(( (RT + REPEAT - 1) / REPEAT ))
    done
    case $_k in
        raw:*) ;;
        *) status_of $_k > $OUT/$_n.status 2>&1; down_$_k ;;
    esac
}

echo "BENCH-INFO config runtime=${RT}s rounds=$ROUNDS repeat=$REPEAT sustained=${SUS_RT}s sustained_cache=${SUS_MB}MiB"
{
    echo "runtime $RT"; echo "rounds $ROUNDS"; echo "repeat $REPEAT"; echo "sustained_runtime $SUS_RT"; echo "sustained_cache_mb $SUS_MB"
    echo "cmdline $(cat /proc/cmdline)"; echo "kernel $(uname -r)"; echo "cpus $(nproc)"
    echo "ram_sectors $(sectors_of $RAM)"; echo "slow_sectors $SIZE"; echo "fast_sectors $(sectors_of $FAST)"
    echo "fio $(fio --version)"
} > $OUT/config.txt
[ -b $RAM ] || say "no $RAM: the RAM rows fail (brd missing?)"
[ -b $OUTDEV ] || say "no $OUTDEV: the raw outputs cannot reach the host"

WS=$((SUS_MB * 5 / 2))M
occ_wb() { echo "$(cache_value 1 last_flushed_segment_id) $(cache_value 1 last_migrated_segment_id) $(cache_value 1 nr_dirty_caches)"; }
occ_wc() { dmsetup status t | cut -d' ' -f4-7; }
# sustained <kind> <dist> [fio arguments]: 4 KiB random writes at qd 32 over
# 2.5x the cache until the user has written the cache's size ("filled" it)
# and then for 3x as long again (at least $SUS_RT s, at most 4x that).
sustained() {
    _k=$1; _n=sus_${1}_$2; shift 2
    up_$_k /dev/mapper/fastc || { say "$_n: setup failed: $(dmesg | tail -1)"; return 1; }
    [ $_k = wb ] && mgr_msg allow_migrate 1
    status_of $_k > $OUT/$_n.status0 2>&1
    _u=/sys/block/dm-$(dm_minor t)/stat
    _w0=$(awk '{print $7}' $_u)
    snap before > $OUT/$_n.stat
    _t0=$(up)
    fio --name=$_n --filename=/dev/mapper/t --direct=1 --ioengine=libaio --rw=randwrite --bs=4k \
        --iodepth=32 --size=$WS --time_based --runtime=$((SUS_RT * 4)) \
        --write_iops_log=$OUT/$_n --log_avg_msec=1000 "$@" \
        --output-format=json --output=$OUT/$_n.json > $OUT/$_n.err 2>&1 &
    _fp=$!
    _fill=
    _stop=
    while kill -0 $_fp 2>/dev/null; do
        _now=$(up)
        _s=$(cat $_u)
        echo "$_now|$_s|$(cat /sys/block/vda/stat)|$(occ_$_k)"
        if [ -z "$_fill" ]; then
            _fill=$(echo "$_s" | awk -v w0=$_w0 -v c=$((SUS_MB * 2048)) -v t=$_now -v t0=$_t0 \
                '$7 - w0 >= c { printf "%.1f", t - t0 }')
        elif [ -z "$_stop" ] && awk -v t=$_now -v t0=$_t0 -v f=$_fill -v m=$SUS_RT \
                'BEGIN { exit !(t - t0 >= (4 * f > m ? 4 * f : m)) }'; then
            kill -INT $_fp
            _stop=1
        fi
        sleep 1
    done > $OUT/$_n.samples
    wait $_fp
    snap after >> $OUT/$_n.stat
    say "$_n done ($(up) s, filled after ${_fill:-never} s)"
    status_of $_k > $OUT/$_n.status 2>&1
    down_$_k
}

# --- MaxSSD, sequential, mixed sizes (cache on the RAM disk) --------------
# BENCH_ROWS / BENCH_KINDS (for a quick look): which rows and which
# configurations run; empty means all.
want_row() { [ -z "${BENCH_ROWS:-}" ] || case " $BENCH_ROWS " in *" $1 "*) true ;; *) false ;; esac; }
want_kind() { [ -z "${BENCH_KINDS:-}" ] || case " $BENCH_KINDS " in *" $1 "*) true ;; *) false ;; esac; }
section_rows() {
    # brd allocates (and zeroes) a page on its first write: touch them all
    # once, so that no configuration pays for it.
    dd if=/dev/zero of=$RAM bs=1M count=$(( $(sectors_of $RAM) / 2048 )) oflag=direct 2>/dev/null
    for round in $(seq 1 $ROUNDS); do
        for r in r4k32 r4k1 r64k r128k seqw; do
            want_row $r || continue
            for k in lin wb wc dc; do want_kind $k && one $k $r $round; done
        done
        want_row seqw && one raw:$RAM seqw $round raw_ram
        if want_row seqr; then
            one raw:$SLOW seqr $round raw_slow
            for k in wb wc dc; do want_kind $k && one $k seqr $round; done
        fi
        save
    done
}

# --- sustained: working set 2.5x the cache, migration on ------------------
section_sustained() {
    sustained wb uniform
    sustained wb zipf --random_distribution=zipf:1.2
    save
    sustained wc uniform
    sustained wc zipf --random_distribution=zipf:1.2
    save
}

# --- scale ----------------------------------------------------------------
section_scale() {
    # (c) resume of a full log: fill the small cache with dirty data, migration
    # off, free it, resume it again.
    bench_fio raw_fastc_seqr /dev/mapper/fastc --rw=read --bs=1M --iodepth=8 --size=${SUS_MB}M --runtime=$RT
    if up_wb /dev/mapper/fastc; then
        mgr_msg allow_migrate 0
        bench_fio fill_log /dev/mapper/t --rw=write --bs=1M --iodepth=8 --size=$((SUS_MB - 8))M --runtime=120
        mgr_msg flush_current_buffer
        dmsetup status writeboost-mgr > $OUT/fulllog.before 2>&1
        dmsetup remove t
        mgr_msg free_cache
        dm_create t --table "0 $SIZE writeboost 1 $SLOW 0"
        mgr_msg switch_to 1
        t0=$(up)
        if mgr_msg resume_cache /dev/mapper/fastc; then
            t1=$(up)
            res fulllog_resume_s "$(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}')"
            dmsetup status writeboost-mgr > $OUT/fulllog.status 2>&1
            dmesg | grep "cache 1: replayed" | tail -1 > $OUT/fulllog.dmesg
        else
            say "full-log resume failed: $(dmesg | tail -1)"
        fi
        down_wb
    fi
    save

    # (b) resume of a formatted 64 GiB cache: 8 MiB of vdb (superblock and
    # record) followed by dm-zero (writes dropped, reads zeroes: no valid
    # segment header, an empty log).
    blkdiscard $RAM 2>/dev/null   # give the RAM disk's pages back for the index
    G=$((64 * 2097152))
    printf '0 16384 linear %s %d\n16384 %d zero\n' $FAST $((SUS_MB * 2048)) $((G - 16384)) | dmsetup create big &&
        dmsetup mknodes big
    dmsetup info writeboost-mgr >/dev/null 2>&1 || mgr_create
    if mgr_msg format_cache_device /dev/mapper/big && mgr_msg switch_to 2; then
        t0=$(up)
        if mgr_msg resume_cache /dev/mapper/big; then
            t1=$(up)
            res resume64g_s "$(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}')"
            dmsetup status writeboost-mgr > $OUT/big.status 2>&1
            cat $WB_SYSFS/caches/2/index_bytes > $OUT/big.index_bytes 2>/dev/null
            free -k > $OUT/big.free
            mgr_msg free_cache
        else
            say "64 GiB resume failed: $(dmesg | tail -1)"
        fi
    else
        say "64 GiB format failed: $(dmesg | tail -1)"
    fi
    dmsetup remove big
}

# --- read-mostly: random 4 KiB reads over a hot set that fits the cache ---
# zipf:1.2 over a 32 MiB hot set of the slow disk, qd8; the cache (where
# there is one) is the 128 MiB fastc on vdb. Per configuration: one warm-up
# run (reads_<kind>_warm: read misses may be cached), then $REPEAT measured
# runs (reads_<kind>_1..). A configuration that cannot be set up (read
# caching is refused until it exists) is reported as n/a: the harness goes
# on with the next one.
READ_ARGS="--rw=randread --bs=4k --iodepth=8 --size=32M --offset=256M --random_distribution=zipf:1.2 --time_based --runtime=$RT"
up_wb22() {
    # A private cache (2.2 form) on fastc, formatted (first sector zeroed).
    zap /dev/mapper/fastc 1
    dm_create t --table "0 $SIZE writeboost $SLOW /dev/mapper/fastc $*"
}
reads_one() {
    _k=$1; shift
    case $_k in
        raw) _dev=$SLOW ;;
        *)
            if ! "$@"; then
                say "reads_$_k: setup failed: $(dmesg | tail -1)"
                res reads_${_k}_setup_failed 1
                dmsetup remove t 2>/dev/null
                return 0
            fi
            _dev=/dev/mapper/t ;;
    esac
    bench_fio reads_${_k}_warm $_dev $READ_ARGS
    for _i in $(seq 1 $REPEAT); do
        bench_fio reads_${_k}_$_i $_dev $READ_ARGS
    done
    case $_k in
        raw) ;;
        dc) dmsetup status t > $OUT/reads_$_k.status 2>&1; down_dc ;;
        *) dmsetup status t > $OUT/reads_$_k.status 2>&1; dmsetup remove t ;;
    esac
}
section_reads() {
    reads_one raw
    reads_one wb_norc up_wb22
    reads_one wb_rc up_wb22 2 read_cache_threshold 4
    reads_one dc up_dc /dev/mapper/fastc
    save
}

# The cache of the sustained runs and of the full-log resume.
dm_create fastc --table "0 $((SUS_MB * 2048)) linear $FAST 0"
for sec in ${BENCH_SECTIONS:-rows sustained scale reads}; do
    section_$sec
done
dmsetup remove fastc
dmesg > $OUT/dmesg.txt
save
say "done ($(up) s)"
exit 0
