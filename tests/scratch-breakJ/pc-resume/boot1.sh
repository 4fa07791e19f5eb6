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
mk_disks
run mgr_create
run mgr_msg format_cache_device /dev/mapper/cdev
run mgr_msg switch_to 1
run mgr_msg resume_cache /dev/mapper/cdev
run wb_create wb1 1 /dev/mapper/b1 1
run mgr_msg allow_migrate 0
run wbpattern fill /dev/mapper/wb1 --region $REG --gen 1000000 --seed 11
wbpattern write /dev/mapper/wb1 $PAT --fsync-every 50 | tail -2
check_data
st "boot1 before cut"
wb_powercut
