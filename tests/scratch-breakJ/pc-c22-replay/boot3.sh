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
run dm_create w22 --table "$T22"
dmesg | grep -i "writeboost" | tail -4
dmesg | grep -q "formatted as a private cache" && die "re-formatted"
echo "dirty: $(f7)"
run wbpattern check /dev/mapper/w22 $PAT --initial gen:1000000
echo "0 $BSZ delay $WB_BACKING 0 100" | dmsetup load b22
run dmsetup suspend b22
run dmsetup resume b22
echo "[$(now)] drop_caches in background, power cut during it"
( set +e; dmsetup message w22 0 drop_caches; echo "drop rc $?" ) &
usleep 2500000
dmsetup status w22 | tee /dev/kmsg
wb_powercut
