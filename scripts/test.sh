#!/usr/bin/env bash
# Everything `make test` does, from a fresh machine: install the toolchain,
# build (or reuse) the kernel, build the module and tools, run the host
# tests (cargo) and every guest test. The last line is "N passed, N failed";
# the exit status is non-zero on any failure, including a build failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
passed=0 failed=0
start=$(date +%s)
finish() {
    echo "test time: $(( $(date +%s) - start ))s"
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ] && [ "$passed" -gt 0 ]
    exit $?
}
step() {
    # step <description> <command...>: a build step; failure counts as one failed test.
    local what=$1; shift
    echo "== $what"
    if ! "$@"; then
        echo "FAIL build step: $what"
        failed=$((failed + 1))
        finish
    fi
}
step "toolchain" "$here/setup-toolchain.sh"
step "kernel" bash -c "'$here/build-kernel.sh' >/dev/null"
step "module" bash -c "'$here/build-module.sh' >/dev/null"
step "tools" bash -c "cd '$root/tools' && cargo build --release --workspace -q"
[ -d "$root/tests/pattern" ] && step "test helpers" bash -c "cd '$root/tests/pattern' && cargo build --release -q"
[ -d "$root/tests/crashtest" ] && step "crash-point harness" bash -c "cd '$root/tests/crashtest' && cargo build --release -q"

echo "== module stack depth (scripts/stack-check.py)"
if python3 "$here/stack-check.py" "$root/dm-writeboost.ko"; then
    passed=$((passed + 1))
else
    echo "FAIL stack-check: the module's deepest call chain is over its stack budget"; failed=$((failed + 1))
fi

echo "== host tests (cargo test)"
host_log=$(mktemp)
# The tools' tests run in the release profile (built above; it keeps
# assertions on); the two harness crates' in the dev profile (their release
# profile links with LTO).
for dir in tools $( [ -d "$root/tests/pattern" ] && echo tests/pattern) $( [ -d "$root/tests/crashtest" ] && echo tests/crashtest); do
    prof=""; [ "$dir" = tools ] && prof=--release
    (cd "$root/$dir" && cargo test --workspace $prof 2>&1) | tee -a "$host_log" | grep -E "^test result|^running|FAILED|panicked" || true
    st=${PIPESTATUS[0]}
    if [ "$st" != 0 ] && ! grep -q "test result: FAILED" "$host_log"; then
        echo "FAIL cargo test in $dir (exit $st)"; failed=$((failed + 1))
    fi
done
hp=$(grep -Eo "test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed" "$host_log" | awk '{s+=$4} END {print s+0}')
hf=$(grep -Eo "test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed" "$host_log" | awk '{s+=$6} END {print s+0}')
rm -f "$host_log"
echo "host: $hp passed, $hf failed"
passed=$((passed + hp)); failed=$((failed + hf))

echo "== guest tests"
guest_out=$(mktemp)
python3 "$here/guest.py" suite "$@" | tee "$guest_out"
gline=$(grep -E "^guest: [0-9]+ passed, [0-9]+ failed" "$guest_out" | tail -1)
rm -f "$guest_out"
if [ -z "$gline" ]; then
    echo "FAIL guest runner produced no summary"; failed=$((failed + 1))
else
    gp=$(echo "$gline" | awk '{print $2}'); gf=$(echo "$gline" | awk '{print $4}')
    passed=$((passed + gp)); failed=$((failed + gf))
fi
finish
