# The forgotten cache, boot 2: using the disk without its cache is refused
# (the state survived the power cut), --force does it (new data B), and
# resuming the cache afterwards warns, then replays A over B. Through its
# cache the disk is then usable again.
. /wb/tests/lib.sh
set -e
run dm_create back1 --table "0 131072 linear $WB_BACKING 0"
run dm_create wbstate --table "0 32768 linear $WB_BACKING 524288"
mkdir -p /var/lib/writeboost
run mount -t ext4 /dev/mapper/wbstate /var/lib/writeboost
run writeboost-create --mgr
echo "+ (must fail) writeboost-create wa 1 /dev/mapper/back1"
set +e; writeboost-create wa 1 /dev/mapper/back1 2>/tmp/err; rc=$?; set -e
cat /tmp/err
assert_eq "$rc" 2 "create without the cache"
grep -q "was last attached to cache 1 ($WB_CACHE) as device 1" /tmp/err || die "the refusal does not name the cache"
grep -q "writeboost-create wa 1 /dev/mapper/back1 1 && writeboost-resume-cache 1 $WB_CACHE" /tmp/err || die "the refusal does not say how to resume it"
dmsetup info wa >/dev/null 2>&1 && die "wa was created although refused"
# --force: used without the cache, newer data B.
run writeboost-create wa 1 /dev/mapper/back1 --force 2>/tmp/err
cat /tmp/err
grep -q "warning: --force" /tmp/err || die "--force gave no warning"
dd if=/dev/urandom of=/tmp/b bs=1M count=2 2>/dev/null
run dd if=/tmp/b of=/dev/mapper/wa bs=4k seek=256 oflag=direct conv=fsync 2>/dev/null
run writeboost-remove 1
# Still refused without --force: the cache still holds A.
must_fail writeboost-create wa 1 /dev/mapper/back1
# Re-created for its cache, the resume warns, and replays A over B.
run writeboost-create wa 1 /dev/mapper/back1 1
run writeboost-resume-cache 1 $WB_CACHE 2>/tmp/err
cat /tmp/err
grep -q "was used without this cache since" /tmp/err || die "resume-cache did not warn"
dd if=$WB_BACKING bs=1M skip=200 count=2 iflag=direct of=/tmp/a 2>/dev/null
dd if=/dev/mapper/wa bs=4k skip=256 count=512 iflag=direct of=/tmp/g 2>/dev/null
cmp /tmp/a /tmp/g || die "the cache's data A is not what wa shows"
cmp -s /tmp/b /tmp/g && die "B survived the replay (the hazard is gone? update the test)"
# Written back and detached, the disk is free of its cache again.
run writeboost-attach 1 1
run writeboost-detach 1
run writeboost-remove 1
run writeboost-create wa 1 /dev/mapper/back1
run writeboost-remove 1
# For a resumed cache, create attaches.
run writeboost-create wa 1 /dev/mapper/back1 1
assert_eq "$(dmsetup table wa | awk '{print $NF}')" 1 "table of wa created for cache 1"
run writeboost-remove 1
run writeboost-free-cache 1
run writeboost-remove --mgr
cat /var/lib/writeboost/state.json
run umount /var/lib/writeboost
run dmsetup remove wbstate
run dmsetup remove back1
echo "tools forgotten cache OK"
