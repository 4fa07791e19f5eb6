# wb-guest: no-module
. /wb/tests/lib.sh
set -e
d=$(dd if=$WB_BACKING bs=512 skip=$((400 * 2048)) count=1 iflag=direct 2>/dev/null | tr -d '\000')
echo "durable: $d"
[ -n "$d" ] && [ "$d" -ge 7 ] || die "no progress"
writeboost-dump $WB_CACHE | head -12
run writeboost-check $WB_CACHE
run writeboost-recover $WB_CACHE --map 1=$WB_BACKING > /tmp/out
tail -5 /tmp/out
run wbpattern check $WB_BACKING --region 4M:64M --ops 3000 --seed 31 \
      --sizes 512,4K,64K,132K,1M --align 512 --durable "$d" --initial zero
echo "pc-recover OK"
