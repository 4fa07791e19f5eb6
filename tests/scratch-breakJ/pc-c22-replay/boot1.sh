. /wb/tests/lib.sh
set -e
CSZ=$((80 * 2048))
BSZ=$((128 * 2048))
PAT="--region 0:48M --ops 300 --seed 41 --sizes 4K,64K --align 4K"
now() { cut -d' ' -f1 /proc/uptime; }
mk_disks() {
    run dm_create c22 --table "0 $CSZ linear $WB_CACHE 0"
    run dm_create b22 --table "0 $BSZ linear $WB_BACKING 0"
}
T22="0 $BSZ writeboost /dev/mapper/b22 /dev/mapper/c22"
f7() { dmsetup status w22 | awk '{print $10}'; }
mk_disks
run dd if=/dev/zero of=/dev/mapper/c22 bs=512 count=1 oflag=direct
run dm_create w22 --table "$T22 2 writeback_threshold 0"
run wbpattern fill /dev/mapper/w22 --region 0:48M --gen 1000000 --seed 41
wbpattern write /dev/mapper/w22 $PAT --fsync-every 30 | tail -1
run wbpattern check /dev/mapper/w22 $PAT --initial gen:1000000
echo "dirty: $(f7)"; dmsetup status w22
wb_powercut
