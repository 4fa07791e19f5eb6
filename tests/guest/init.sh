#!/bin/busybox sh
# /init of the test guest (copied into the initramfs by scripts/guest.py).
#
# Runs every script listed in /wb/run-list in order. Around each one it loads
# a fresh dm_writeboost module (not for a script with the line
# "# wb-guest: no-module" among its first 10: it runs without the module and
# may load it itself) and afterwards tears down whatever the test left
# (devices, caches, the manager) and unloads the module. The verdict of
# each test goes to the serial console as "@@WB PASS <name>" or
# "@@WB FAIL <name> <reason>"; the host reads them (scripts/guest.py).
/bin/busybox --install -s /bin
# /wb/dmsetup holds dmsetup, for the test scripts only: the admin tools in
# /wb/bin are wrappers that drop it from their PATH (scripts/guest.py).
export PATH=/wb/bin:/wb/dmsetup:/sbin:/usr/sbin:/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp /run /var/log /var/run /mnt /dev/shm /lib/modules
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd 2>/dev/null
hostname wbguest
# Make the kernel log reach the console for errors and warnings.
echo 7 > /proc/sys/kernel/printk
echo 1 > /proc/sys/kernel/sysrq
. /wb/tests/lib.sh

echo "@@WB BOOTED $(uname -r)"
timeout_s=$(cat /wb/test-timeout 2>/dev/null || echo 600)
for name in $(cat /wb/run-list); do
    echo "@@WB BEGIN $name"
    reason=""
    load=1
    head -n 10 /wb/tests/"$name" | grep -q '^# wb-guest: no-module' && load=0
    if [ $load = 1 ] && ! insmod /wb/dm-writeboost.ko; then
        reason="insmod failed"
    else
        ( cd /tmp && exec timeout "$timeout_s" sh /wb/tests/"$name" ) </dev/null
        rc=$?
        [ $rc = 0 ] || reason="exit status $rc"
        [ $rc = 143 ] && reason="timed out after ${timeout_s}s"
        if ! wb_teardown_all; then
            [ -n "$reason" ] || reason="teardown failed"
        fi
        if lsmod | grep -q '^dm_writeboost'; then
            if ! rmmod dm_writeboost; then
                [ -n "$reason" ] || reason="rmmod failed (module still in use)"
            fi
        fi
    fi
    if [ -z "$reason" ]; then
        echo "@@WB PASS $name"
    else
        echo "@@WB FAIL $name $reason"
    fi
done
echo "@@WB DONE"
sync
poweroff -f
