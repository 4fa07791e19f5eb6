# See boot1.sh: after the second cut, attached at once and pass-through
# first both read 'C'.
. /wb/tests/lib.sh
set -e
run mgr_create
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
mkfill C $((64 * 4096)) /tmp/C
run wb_create wb1 1 $WB_BACKING 1 262144
read_blocks /dev/mapper/wb1 1000 64 /tmp/r
cmp -s /tmp/r /tmp/C || die "after the second cut, blocks 1000..1063 read $(sector_summary /tmp/r)"
echo "read caching + pass-through + power cut OK"
