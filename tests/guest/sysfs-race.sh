# sysfs readers and writers running while devices are removed and caches
# freed: removing a sysfs directory waits for running show/store calls, so
# the module must never hold a lock they need while removing one (a
# deadlock otherwise). Several cycles with readers hammering every node.
. /wb/tests/lib.sh
set -e
hammer() {
    set +e
    while :; do
        cat $WB_SYSFS/caches/*/* $WB_SYSFS/devices/*/* >/dev/null 2>&1
        { echo 0 > $WB_SYSFS/caches/1/allow_migrate; } 2>/dev/null
    done
}
run mgr_create
hammer & h1=$!
hammer & h2=$!
i=0
while [ $i -lt 8 ]; do
    mgr_msg format_cache_device $WB_CACHE
    mgr_msg switch_to 1
    mgr_msg resume_cache $WB_CACHE
    run wb_create wr 1 $WB_BACKING 1 8192
    dd if=/dev/urandom of=/dev/mapper/wr bs=4k count=8 oflag=direct 2>/dev/null
    dmsetup message wr 0 remove_sysfs
    dmsetup message wr 0 add_sysfs
    dmsetup remove wr
    mgr_msg free_cache
    i=$((i + 1))
done
kill -0 $h1 && kill -0 $h2 || die "the sysfs readers did not run throughout"
kill $h1 $h2
wait $h1 $h2 2>/dev/null || true
echo "sysfs race OK ($i cycles)"
