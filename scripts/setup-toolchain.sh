#!/usr/bin/env bash
# Install everything needed to build the Rust-enabled kernel, the module, the
# tools and to run the QEMU guest.  Idempotent: every step checks first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
# One installer at a time (apt and cargo install do not share).
mkdir -p "$WB_CACHE"; exec 8>"$WB_CACHE/setup.lock"; flock 8

say() { echo "[setup] $*"; }

APT_PKGS=(linux-source-6.12 rustc-web rust-web-src libclang-dev clang lld llvm
          flex bison bc libelf-dev libssl-dev cpio kmod dwarves make gcc xz-utils
          qemu-system-x86 busybox-static dmsetup fio e2fsprogs xfsprogs util-linux
          libdevmapper-dev pkgconf)
# libdevmapper-dev, pkgconf: the headers the devicemapper crate (the admin
# tools' DM ioctls) takes its constants from at build time; the tools do
# not link libdevmapper. dmsetup: the guest tests' own checks (the tools do
# not need it).

missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    say "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "Debian packages: all present"
fi

if [ -x "$WB_BINDGEN" ] && "$WB_BINDGEN" --version 2>/dev/null | grep -q "0.70.1"; then
    say "bindgen 0.70.1: present ($WB_BINDGEN)"
else
    say "installing bindgen-cli 0.70.1 from crates.io into $WB_TOOLS_ROOT (takes ~2 min)"
    cargo install --locked --root "$WB_TOOLS_ROOT" bindgen-cli --version 0.70.1 >/dev/null 2>&1 \
        || cargo install --locked --root "$WB_TOOLS_ROOT" bindgen-cli --version 0.70.1
fi

"$WB_RUSTC" --version | grep -q "^rustc 1\.9[6-9]" || { echo "[setup] $WB_RUSTC is not rustc >= 1.96" >&2; exit 1; }
say "kernel rustc: $("$WB_RUSTC" --version)"
say "done"
