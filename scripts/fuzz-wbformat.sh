#!/usr/bin/env bash
# Fuzz the wbformat decoders and the index with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz-wbformat.sh                   every target, FUZZ_SECONDS (30) each
#   FUZZ_SECONDS=600 scripts/fuzz-wbformat.sh segment index_ops
#
# Targets live in rust/wbformat/fuzz/fuzz_targets/. Corpora and crash
# artifacts stay in rust/wbformat/fuzz/{corpus,artifacts}/ (not committed).
# cargo-fuzz is installed from crates.io if missing. It needs nightly-only
# compiler flags; the machine's stable toolchain accepts them with
# RUSTC_BOOTSTRAP=1. Exits non-zero if any target finds a crash.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${FUZZ_SECONDS:-30}
fuzz_dir="$root/rust/wbformat/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "[fuzz] installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1

cd "$fuzz_dir"
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

failed=()
for t in "${targets[@]}"; do
    echo "[fuzz] $t for ${secs}s" >&2
    mkdir -p "corpus/$t"
    # Safe Rust only: no sanitizer needed; debug assertions and overflow
    # checks stay on, as in the kernel.
    if ! cargo fuzz run --sanitizer none "$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 2>"$fuzz_dir/$t.log"; then
        failed+=("$t")
        tail -n 40 "$fuzz_dir/$t.log" >&2
    else
        grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$fuzz_dir/$t.log" | sed "s/^/[fuzz] $t: /" >&2 || true
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "[fuzz] FAILED: ${failed[*]} (see rust/wbformat/fuzz/artifacts/)" >&2
    exit 1
fi
echo "[fuzz] all ${#targets[@]} targets clean (${secs}s each)" >&2
