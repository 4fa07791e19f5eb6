# Helpers for guest tests (busybox sh). Sourced by /init and by every test:
#   . /wb/tests/lib.sh
#
# Disks: $WB_BACKING (slow, /dev/vda) and $WB_CACHE (fast, /dev/vdb).
# Tools: dmsetup, fio, wbpattern, writeboost-* are on PATH.

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
    return $_ok
}
