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
# power cut while the 2.2 constructor replays the private cache (dm-delay 40 ms)
mk_disks
echo "0 $CSZ delay $WB_CACHE 0 40" | dmsetup load c22
run dmsetup suspend c22
run dmsetup resume c22
echo "[$(now)] dmsetup create w22 in background" | tee /dev/kmsg
( set +e; dmsetup create w22 --table "$T22"; echo "[$(now)] create rc $?" ) &
usleep 1500000
echo "[$(now)] cutting power; kernel says:" | tee /dev/kmsg
dmesg | tail -4
dmesg | grep -i writeboost | tail -3
usleep 300000
wb_powercut
