# Installed as `make install` does it (the module under
# /lib/modules/<release>/updates/, then depmod), `modprobe dm-writeboost`
# loads it, the tools work with it, and `modprobe -r` unloads it.
. /wb/tests/lib.sh
set -e
run rmmod dm_writeboost          # the runner's insmod
kver=$(uname -r)
built_for=$(tr '\0' '\n' < /wb/dm-writeboost.ko | sed -n 's/^vermagic=\([^ ]*\).*/\1/p')
assert_eq "$built_for" "$kver" "the kernel release the module was built for (make install's KVER)"
# make install: install -D -m 0644 dm-writeboost.ko /lib/modules/$(KVER)/updates/; depmod -a $(KVER)
run mkdir -p /lib/modules/$kver/updates      # (the guest's busybox has no install)
run cp /wb/dm-writeboost.ko /lib/modules/$kver/updates/dm-writeboost.ko
run chmod 0644 /lib/modules/$kver/updates/dm-writeboost.ko
run depmod -a $kver
grep -q "updates/dm-writeboost.ko" /lib/modules/$kver/modules.dep || die "depmod did not list the module"
run modprobe dm-writeboost
lsmod | grep -q '^dm_writeboost' || die "modprobe did not load dm_writeboost"
modinfo dm_writeboost | tee /tmp/modinfo
grep -q "updates/dm-writeboost.ko" /tmp/modinfo || die "modinfo does not find the installed module"
run dmsetup targets
dmsetup targets | grep -q '^writeboost-mgr' || die "writeboost-mgr target missing"
run writeboost-create --mgr
run writeboost-status
run writeboost-remove --mgr
run modprobe -r dm-writeboost
lsmod | grep -q '^dm_writeboost' && die "modprobe -r did not unload it"
writeboost-status | grep -q "not loaded" || die "status after modprobe -r"
# The module's own name (with an underscore) works as well.
run modprobe dm_writeboost
lsmod | grep -q '^dm_writeboost' || die "modprobe dm_writeboost"
echo "tools modprobe OK"
