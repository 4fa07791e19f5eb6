#!/usr/bin/env bash
# Build dm-writeboost.ko.
#   build-module.sh            against the project's cached guest kernel
#   KDIR=/path build-module.sh against any built Rust-enabled kernel tree
# LLVM=1 is added automatically when KDIR's kernel was built with clang.
# The rustc is WB_RUSTC (default /usr/bin/rustc; `make RUSTC=...` sets it):
# it must be exactly the rustc that built KDIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
if [ -z "${KDIR:-}" ]; then
    KDIR=$("$here/build-kernel.sh" | tail -n 1)
fi
[ -f "$KDIR/scripts/target.json" ] && [ -f "$KDIR/rust/libkernel.rmeta" ] || {
    echo "[module] $KDIR is not a built Rust-enabled kernel tree (no rust/libkernel.rmeta)" >&2; exit 1; }
llvm=()
if grep -q '^CONFIG_CC_IS_CLANG=y' "$KDIR/.config"; then llvm=(LLVM=1); fi
if [ -n "${LLVM:-}" ]; then llvm=(LLVM="$LLVM"); fi
echo "[module] generating shim bindings (bindgen over rust/wb_shim.h)" >&2
"$here/gen-shim-bindings.sh" "$KDIR" "$WB_BINDGEN" "$WB_ROOT/rust/wb_shim_generated.rs"
echo "[module] building dm-writeboost.ko against $KDIR ${llvm[*]}" >&2
make -C "$KDIR" M="$WB_ROOT" "${WB_KMAKE_VARS[@]}" "${llvm[@]}" modules
echo "$WB_ROOT/dm-writeboost.ko"
