# Soak (make soak): two concurrent O_DIRECT writers of the same 256 KiB
# (one all 'A', one all 'B'), 150 times. Afterwards every 512-byte sector
# must be all 'A' or all 'B' (a disk never tears a sector). Before the fix
# (a write updating an open-segment line in place waits while another
# write copies into it) 11 of 150 reads had torn sectors; after it 0.
# The engine test in_place_update_waits_for_a_copy_in_progress pins the
# rule in make test; this shows it on the real kernel.
. /wb/tests/lib.sh
mkfill A 262144 /tmp/a; mkfill B 262144 /tmp/b
try() { # $1 = device
  _bad=0
  for i in $(seq 1 150); do
    dd if=/tmp/a of=$1 bs=256k seek=$((i % 8)) oflag=direct 2>/dev/null &
    dd if=/tmp/b of=$1 bs=256k seek=$((i % 8)) oflag=direct 2>/dev/null &
    wait
    dd if=$1 of=/tmp/g bs=256k skip=$((i % 8)) count=1 iflag=direct 2>/dev/null
    s=$(sector_summary /tmp/g)
    case "$s" in *mixed*) _bad=$((_bad + 1)); [ $_bad -le 2 ] && echo "iteration $i: $s" | cut -c1-200 ;; esac
  done
  echo "$1: $_bad of 150 reads had torn sectors"
  return $_bad
}
try $WB_CACHE || die "the raw disk tears sectors: no conclusion"
cache_setup || die setup
wb_create wb1 1 $WB_BACKING 1 $((64 * 2048)) || die wb1
try /dev/mapper/wb1; bad=$?
dmsetup remove wb1
[ $bad = 0 ] || die "writeboost returned $bad reads with torn sectors"
