# Helpers for guest tests (busybox sh). Sourced by /init and by every test:
#   . /wb/tests/lib.sh
#
# Disks: $WB_BACKING (slow, /dev/vda) and $WB_CACHE (fast, /dev/vdb).
# Tools: dmsetup, fio, wbpattern, writeboost-* are on PATH. The admin tools
# (writeboost-*) run with dmsetup removed from theirs: they use the DM
# ioctls; dmsetup is for the scripts' own checks.

WB_BACKING=/dev/vda
WB_CACHE=/dev/vdb
WB_SYSFS=/sys/module/dm_writeboost

# Print a message and fail the test.
die() {
    echo "FAIL: $*" >&2
    exit 1
}

# Run a command that must succeed, showing it.
run() {
    echo "+ $*"
    "$@" || die "command failed ($?): $*"
}

# Run a command that must fail, showing it and its error output.
must_fail() {
    echo "+ (must fail) $*"
    if "$@"; then
        die "command unexpectedly succeeded: $*"
    fi
    return 0
}

# assert_eq <actual> <expected> <what>
assert_eq() {
    [ "$1" = "$2" ] || die "$3: expected '$2', got '$1'"
}

# assert_contains <haystack> <needle> <what>
assert_contains() {
    case "$1" in
        *"$2"*) ;;
        *) die "$3: expected to contain '$2', got: $1" ;;
    esac
}

# Size of a block device in 512-byte sectors.
sectors_of() {
    blockdev --getsz "$1"
}

# dmsetup create + mknodes (no udev in the guest).
dm_create() {
    _name=$1
    shift
    dmsetup create "$_name" "$@" || return 1
    dmsetup mknodes "$_name"
    [ -b "/dev/mapper/$_name" ] || die "/dev/mapper/$_name missing after create"
}

# Create the manager: 0 1 writeboost-mgr.
mgr_create() {
    dm_create writeboost-mgr --table "0 1 writeboost-mgr"
}

mgr_msg() {
    dmsetup message writeboost-mgr 0 "$@"
}

# The last lines the kernel logged (for checking error messages).
klog_tail() {
    dmesg | tail -n "${1:-5}"
}

# refused_table <name> "<table>" "<message part>": `dmsetup create <name>`
# with the table must fail, the kernel's last lines must carry the message,
# and no device <name> may be left behind.
refused_table() {
    echo "+ (must fail) dmsetup create $1 --table \"$2\""
    if dmsetup create "$1" --table "$2" 2>/tmp/err; then
        die "table accepted: $2"
    fi
    klog_tail 3 | grep -q -- "$3" || { klog_tail 3; die "no message '$3' for table: $2"; }
    dmsetup info "$1" >/dev/null 2>&1 && die "device '$1' exists after a refused table"
    return 0
}

# Power cut: no sync, no clean shutdown. The host expects the boot to end here.
wb_powercut() {
    echo "@@WB CRASH"
    echo b > /proc/sysrq-trigger
    sleep 10
}

# Remove every device-mapper device and free every cache, so the module can
# be unloaded. Returns non-zero if something could not be removed.
wb_teardown_all() {
    _ok=0
    # Writeboost devices first (they may hold caches), then everything else.
    for _n in $(dmsetup ls --target writeboost 2>/dev/null | awk '{print $1}'); do
        [ "$_n" = "No" ] && continue
        dmsetup remove "$_n" || _ok=1
    done
    if [ -d $WB_SYSFS/caches ] && dmsetup info writeboost-mgr >/dev/null 2>&1; then
        for _c in $(ls $WB_SYSFS/caches 2>/dev/null); do
            dmsetup message writeboost-mgr 0 switch_to "$_c" && \
                dmsetup message writeboost-mgr 0 free_cache || _ok=1
        done
    fi
    for _n in $(dmsetup ls 2>/dev/null | awk '{print $1}'); do
        [ "$_n" = "No" ] && continue
        dmsetup remove "$_n" || _ok=1
    done
    # Without udev, `dmsetup remove` may leave /dev/mapper nodes behind:
    # the next test starts without stale ones.
    dmsetup mknodes >/dev/null 2>&1
    return $_ok
}

# Build the standard setup: manager, cache 1 on $WB_CACHE (formatted),
# and writeboost device <name> with <device_id> over <backing> (default
# $WB_BACKING), attached to cache 1. Size in sectors is optional.
cache_setup() {
    mgr_create || return 1
    mgr_msg format_cache_device $WB_CACHE || return 1
    mgr_msg switch_to 1 || return 1
    mgr_msg resume_cache $WB_CACHE || return 1
}

# small_cache_setup <MiB>: cache 1 on a linear table "cdev" over the first
# <MiB> of $WB_CACHE (a cache of <MiB> - 1 segments), formatted and resumed.
small_cache_setup() {
    dm_create cdev --table "0 $(($1 * 2048)) linear $WB_CACHE 0" || return 1
    mgr_create || return 1
    mgr_msg format_cache_device /dev/mapper/cdev || return 1
    mgr_msg switch_to 1 || return 1
    mgr_msg resume_cache /dev/mapper/cdev || return 1
}

# cache_dirty: dirty lines of cache 1, all devices (removed ones included).
cache_dirty() {
    mgr_msg switch_to 1
    mgr_status_value nr_dirty_caches
}

# wait_cache_clean <seconds>: until cache 1 has no dirty line (fails after
# <seconds>, saying how many are left).
wait_cache_clean() {
    _i=0
    until [ "$(cache_dirty)" = 0 ]; do
        _i=$((_i + 1))
        [ $_i -lt $1 ] || { echo "cache 1 still has $(cache_dirty) dirty lines after $1 s" >&2; return 1; }
        sleep 1
    done
}

# wb_create <name> <device_id> <backing> <cache_id> [sectors]
wb_create() {
    _sz=${5:-$(sectors_of $3)}
    dm_create "$1" --table "0 $_sz writeboost $2 $3 $4" || return 1
    dmsetup message "$1" 0 add_sysfs
}

# Wait until device <id> has no dirty lines (migration must be allowed).
wait_clean() {
    _i=0
    while [ "$(cat $WB_SYSFS/devices/$1/nr_dirty_caches)" != 0 ]; do
        _i=$((_i + 1))
        [ $_i -lt ${2:-180} ] || die "device $1 still has $(cat $WB_SYSFS/devices/$1/nr_dirty_caches) dirty lines"
        sleep 1
    done
}

# A value from the manager status ("name: value" lines).
mgr_status_value() {
    dmsetup status writeboost-mgr | sed -n "s/^$1: //p"
}

# mkfill <char> <bytes> <file>: a file of <bytes> copies of one character.
mkfill() {
    head -c "$2" /dev/zero | tr '\000' "$1" > "$3"
}

# sector_summary <file>: what a file holds, as runs of equal 512-byte
# sectors, e.g. "sectors: 3 x 41, 1 x 00, 4 x 41" (3 sectors of 0x41 bytes,
# one of zeroes, ...; "mixed" for a sector of several byte values). For
# messages about what a read returned.
sector_summary() {
    od -An -v -tx1 -w512 "$1" | uniq -c | awk '{
        n = $1; v = $2
        for (i = 3; i <= NF; i++) if ($i != v) { v = "mixed"; break }
        printf "%s%s x %s", s, n, v; s = ", "
    } END { print "" }' | sed 's/^/sectors: /'
}

# read_blocks <dev> <first 4 KiB block> <count> <file> (O_DIRECT).
read_blocks() {
    dd if="$1" of="$4" bs=4k skip="$2" count="$3" iflag=direct 2>/dev/null
}

# same_as_one_of <file> <expected>...: the file equals one of the others.
same_as_one_of() {
    _f=$1
    shift
    for _e in "$@"; do
        cmp -s "$_f" "$_e" && return 0
    done
    return 1
}

# cache_value <cache_id> <node>: a sysfs value of a cache.
cache_value() {
    cat $WB_SYSFS/caches/$1/$2
}

# wait_migrated <cache_id> <segment_id> [seconds]: wait until the cache's
# last_migrated_segment_id reaches <segment_id>. Returns 1 on timeout
# (not a failure in itself: the contract does not promise migration).
wait_migrated() {
    _i=0
    while [ "$(cache_value $1 last_migrated_segment_id)" -lt "$2" ]; do
        _i=$((_i + 1))
        [ $_i -lt $((${3:-30} * 5)) ] || return 1
        sleep 0.2
    done
}

# wb_set_cache <name> <cache_id>: reload writeboost device <name> with
# another cache_id (0 = detach), then suspend and resume it.
wb_set_cache() {
    dmsetup table "$1" | sed "s/ [0-9]*\$/ $2/" | dmsetup load "$1" || return 1
    dmsetup suspend "$1" || return 1
    dmsetup resume "$1"
}

# Marks that survive a power cut, for multi-boot tests: mark_put <n> <text>
# writes one line to sector n of a record area on $WB_BACKING (at 400 MiB,
# beyond the devices the tests create), durably; mark_get <n> reads it back.
WB_MARKS=$((400 * 2048))
mark_put() {
    echo "$2" | dd of=$WB_BACKING bs=512 seek=$(($WB_MARKS + $1)) conv=sync,fsync oflag=direct 2>/dev/null
}
mark_get() {
    dd if=$WB_BACKING bs=512 skip=$(($WB_MARKS + $1)) count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -1
}

# dm_swap <name> "<table>": load a new table into a DM device (suspend,
# load, resume), e.g. dm-error for a disk that dies, the old linear table
# for one that heals.
dm_swap() {
    dmsetup suspend "$1" || return 1
    dmsetup load "$1" --table "$2" || return 1
    dmsetup resume "$1"
}

# pair_setup: a 31-segment cache 1 (small_cache_setup 32) with devices 8
# and 9 on it over b8 and b9, 64 MiB each at 64 MiB and 128 MiB of
# $WB_BACKING (sets sz, their size in sectors).
pair_setup() {
    sz=$((64 * 2048))
    small_cache_setup 32 || return 1
    dm_create b8 --table "0 $sz linear $WB_BACKING $sz" || return 1
    dm_create b9 --table "0 $sz linear $WB_BACKING $((2 * sz))" || return 1
    wb_create wb8 8 /dev/mapper/b8 1 || return 1
    wb_create wb9 9 /dev/mapper/b9 1
}

# klog_mark: writes a marker line into the kernel log, for klog_since (a
# line count would not do: once the log buffer is full, old lines go).
klog_mark() {
    _klog_n=$((${_klog_n:-0} + 1))
    _klog_mark="wbtest-mark-$$-$_klog_n-$RANDOM"
    echo "$_klog_mark" > /dev/kmsg
}

# klog_since: the kernel log after the last klog_mark.
klog_since() {
    dmesg | sed -n "/$_klog_mark/,\$p" | tail -n +2
}

# removed_behind_parked [delay ms]: pair_setup; device 8 writes 14 MiB
# (gen 1000, seed 8) and its disk dies (its lines parked at the tail of the
# log); device 9 writes 2 MiB (gen 2000, seed 9), flushed, and is removed
# dirty (the cache claims its disk). With a delay, every cache-device I/O
# waits that long from then on. Then migration is allowed; returns once
# device 9's lines are written back (past the parked ones).
removed_behind_parked() {
    pair_setup || return 1
    mgr_msg allow_migrate 0 || return 1
    timeout 60 wbpattern fill /dev/mapper/wb8 --region 0:14M --gen 1000 --seed 8 || return 1
    dd if=/dev/zero of=/dev/mapper/wb8 bs=4k count=0 conv=fsync 2>/dev/null || return 1
    dm_swap b8 "0 $sz error" || return 1
    timeout 60 wbpattern fill /dev/mapper/wb9 --region 0:2M --gen 2000 --seed 9 || return 1
    dd if=/dev/zero of=/dev/mapper/wb9 bs=4k count=0 conv=fsync 2>/dev/null || return 1
    dmsetup remove wb9 || return 1
    if [ "${1:-0}" != 0 ]; then
        dm_swap cdev "0 $((32 * 2048)) delay $WB_CACHE 0 $1" || return 1
    fi
    mgr_msg allow_migrate 1 || return 1
    _i=0
    until [ "$(cache_dirty)" = 3584 ]; do
        _i=$((_i + 1))
        [ $_i -lt 600 ] || { echo "device 9 never written back ($(cache_dirty) dirty lines)" >&2; return 1; }
        sleep 0.1
    done
}
