# Sourced by every script: one place for paths and the toolchain variables.
# The kernel must be built by Debian's rustc (1.96, with rust-src), not the
# rustup one that comes first on PATH (see Documentation/building.md).
WB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WB_CACHE=${WB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/writeboost}
WB_TOOLS_ROOT=${WB_TOOLS_ROOT:-$WB_CACHE/tools}
WB_BINDGEN=${WB_BINDGEN:-$WB_TOOLS_ROOT/bin/bindgen}
WB_RUSTC=${WB_RUSTC:-/usr/bin/rustc}
WB_RUSTDOC=${WB_RUSTDOC:-/usr/bin/rustdoc}
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-14/lib}
WB_KMAKE_VARS=(RUSTC="$WB_RUSTC" HOSTRUSTC="$WB_RUSTC" RUSTDOC="$WB_RUSTDOC" BINDGEN="$WB_BINDGEN")
