# writeboost-mgr: a singleton; switch_to selects a cache id; status shows the
# selection and, for 0, the global structure sizes. Bad input is refused
# with a clear kernel-log message and changes nothing.
. /wb/tests/lib.sh
set -e

run mgr_create
st=$(dmsetup status writeboost-mgr)
echo "$st"
assert_contains "$st" "current cache_id_ptr: 0" "initial status"
assert_contains "$st" "segment_header_device:" "global info"
assert_contains "$st" "(<= 4096)" "header fits check"
# The on-disk header size printed must really be <= 4096.
hdr=$(echo "$st" | sed -n 's/^segment_header_device: \([0-9]*\).*/\1/p')
[ -n "$hdr" ] && [ "$hdr" -le 4096 ] || die "segment_header_device '$hdr' not <= 4096"

# Only one manager.
must_fail dmsetup create writeboost-mgr2 --table "0 1 writeboost-mgr"
klog_tail 3 | grep -q "already exists" || die "no clear message for a second manager"
dmsetup info writeboost-mgr2 >/dev/null 2>&1 && die "second manager exists after failed create"

# Arguments are refused.
must_fail dmsetup create mgrx --table "0 1 writeboost-mgr extra"
klog_tail 3 | grep -q "takes no arguments" || die "no clear message for manager arguments"

# switch_to
run mgr_msg switch_to 3
assert_contains "$(dmsetup status writeboost-mgr)" "current cache_id_ptr: 3" "after switch_to 3"
run mgr_msg SWITCH_TO 0
assert_contains "$(dmsetup status writeboost-mgr)" "current cache_id_ptr: 0" "messages are case-insensitive"
run mgr_msg switch_to 5
for bad in "switch_to 128" "switch_to -1" "switch_to abc" "switch_to" "switch_to 1 2" "switch_to 0x3" "no_such_message" "switch_to 99999999999999999999999"; do
    must_fail mgr_msg $bad
    assert_contains "$(dmsetup status writeboost-mgr)" "current cache_id_ptr: 5" "after bad message '$bad'"
done
klog_tail 10 | grep -q "invalid cache_id" || die "no clear message for a bad cache id"
klog_tail 10 | grep -q "unknown message" || die "no clear message for an unknown message"

# The manager can be reloaded and removed, then created again.
dmsetup table writeboost-mgr | dmsetup load writeboost-mgr || die "reload manager"
run dmsetup suspend writeboost-mgr
run dmsetup resume writeboost-mgr
run dmsetup remove writeboost-mgr
run mgr_create
run dmsetup remove writeboost-mgr
echo "mgr basics OK"
