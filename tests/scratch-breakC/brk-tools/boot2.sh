. /wb/tests/lib.sh
set -e
run dm_create c22 --table "0 $((12 * 2048)) linear $WB_CACHE 0"
run dm_create b22 --table "0 $((24 * 2048)) linear $WB_BACKING 0"
writeboost-dump /dev/mapper/c22 | head -30
run writeboost-check /dev/mapper/c22
writeboost-check --json /dev/mapper/c22 | grep -i -E "dirty|clean" | head
run writeboost-recover --dry-run --map 1=/dev/mapper/b22 /dev/mapper/c22
writeboost-recover --dry-run --json --map 1=/dev/mapper/b22 /dev/mapper/c22 | grep -E "bytes_total|dirty_lines|dirty_sectors"
bt=$(writeboost-recover --dry-run --json --map 1=/dev/mapper/b22 /dev/mapper/c22 | sed -n 's/.*"bytes_total": \([0-9]*\).*/\1/p')
assert_eq "$bt" $((1024 * 1024)) "recover would write only the dirty 1 MiB"
run writeboost-recover --map 1=/dev/mapper/b22 /dev/mapper/c22
run wbpattern check /dev/mapper/b22 --region 0:2M --ops 0 --initial gen:1
run wbpattern check /dev/mapper/b22 --region 2M:1M --ops 0 --initial gen:5
run wbpattern check /dev/mapper/b22 --region 3M:5M --ops 0 --initial gen:1
run dm_create w22 --table "0 $((24 * 2048 - 3)) writeboost /dev/mapper/b22 /dev/mapper/c22 2 read_cache_threshold 2"
dmsetup status w22
run wbpattern check /dev/mapper/w22 --region 2M:1M --ops 0 --initial gen:5
run dmsetup remove w22
echo "brk-tools OK"
