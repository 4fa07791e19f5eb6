. /wb/tests/lib.sh
set -e
# shared by the boots: cache device = dm-linear "cdev" over vdb (so a boot
# can swap in dm-delay), backing = dm-linear "b1" over the first 200 MiB of vda.
CSZ=$(sectors_of $WB_CACHE)
BSZ=$((200 * 2048))
REG=0:56M
PAT="--region $REG --ops 400 --seed 11 --sizes 4K,64K --align 4K"
mk_disks() {
    run dm_create cdev --table "0 $CSZ linear $WB_CACHE 0"
    run dm_create b1 --table "0 $BSZ linear $WB_BACKING 0"
}
now() { cut -d' ' -f1 /proc/uptime; }
check_data() {
    run wbpattern check /dev/mapper/wb1 $PAT --initial gen:1000000
}
st() { echo "[$(now)] $*"; dmsetup status writeboost-mgr | egrep 'nr_dirty|last_|record_|durable|error' | tr '\n' ' '; echo; }
# resume normally, check, then cut power during write-back
mk_disks
run mgr_create
run wb_create wb1 1 /dev/mapper/b1 0
run mgr_msg switch_to 1
t0=$(now)
run mgr_msg resume_cache /dev/mapper/cdev
echo "resume took $t0 -> $(now)"
dmesg | grep -i "writeboost" | tail -6
st "boot3 after resume"
check_data
run mgr_msg force_migrate 1
i=0
while [ "$(cache_value 1 last_migrated_segment_id)" -lt 20 ]; do i=$((i+1)); [ $i -lt 300 ] || die "no migration"; usleep 100000; done
st "boot3 cut during write-back"
wb_powercut
