. /wb/tests/lib.sh
set -e
rec=$((400 * 2048))
l=$(dd if=$WB_BACKING bs=512 skip=$rec count=1 iflag=direct 2>/dev/null | tr -d '\000')
echo "last synced: $l"
n=${l%% *}; sum=${l#* }
[ -n "$n" ] && [ "$n" -ge 2 ] || die "no progress"
run writeboost-check $WB_CACHE
run mgr_create
run wb_create wb1 1 $WB_BACKING 0 $((256 * 2048))
run mgr_msg switch_to 1
run mgr_msg resume_cache $WB_CACHE
run wb_set_cache wb1 1
e2fsck -fn /dev/mapper/wb1 || die "e2fsck found errors after the power cut"
mkdir -p /mnt; run mount -o ro /dev/mapper/wb1 /mnt
ls /mnt | head -50 | tr '\n' ' '; echo
[ -f /mnt/f$n ] || die "synced file f$n missing"
got=$(md5sum /mnt/f$n | cut -d' ' -f1)
assert_eq "$got" "$sum" "synced file f$n content"
for f in /mnt/f*; do case $f in *.tmp) continue;; esac
  head -c 20 $f | grep -q "^file" || die "$f does not start with its header"
done
umount /mnt
echo "pc-fs OK"
