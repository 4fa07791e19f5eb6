#!/usr/bin/env bash
# Build (or reuse) the Rust-enabled guest kernel.
#
# The build tree lives outside the repository, under $WB_CACHE/kernel-<key>,
# where <key> hashes everything that determines the result: the Debian
# linux-source package version, the config fragment, this script, the kernel
# rustc and bindgen versions.  A second run with the same key rebuilds nothing.
# Prints the build directory on its last line of stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
say() { echo "[kernel] $*" >&2; }

src_tar=/usr/src/linux-source-6.12.tar.xz
[ -f "$src_tar" ] || { echo "[kernel] $src_tar missing: run scripts/setup-toolchain.sh" >&2; exit 1; }
src_ver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
key=$( { echo "$src_ver"; cat "$here/kconfig/writeboost.config" "$here/build-kernel.sh";
         "$WB_RUSTC" --version; "$WB_BINDGEN" --version; gcc --version | head -1; } | sha256sum | cut -c1-16)
kdir="$WB_CACHE/kernel-$key"

# One builder at a time: a second run (another checkout, a parallel make)
# waits for the first instead of unpacking over its tree.
mkdir -p "$WB_CACHE"
exec 9>"$WB_CACHE/kernel-$key.lock"
flock 9

if [ -f "$kdir/.wb-built" ] && [ -f "$kdir/arch/x86/boot/bzImage" ]; then
    say "cached kernel $key (linux-source $src_ver) at $kdir"
    echo "$kdir"; exit 0
fi

say "building kernel $key (linux-source $src_ver); takes ~8 minutes on 2 cores"
# Built in place: the Rust metadata records absolute paths (scripts/target.json),
# so the tree must not move after it is built.  An unfinished tree is redone.
mkdir -p "$WB_CACHE"
rm -rf "$kdir"; mkdir -p "$kdir"
say "unpacking $src_tar"
tar -xf "$src_tar" -C "$kdir" --strip-components=1
cd "$kdir"
kmake() { make -s "${WB_KMAKE_VARS[@]}" "$@"; }
kmake rustavailable >&2
kmake tinyconfig >/dev/null
./scripts/kconfig/merge_config.sh -m .config "$here/kconfig/writeboost.config" >/dev/null
kmake olddefconfig >/dev/null
# Every line of the fragment must have survived olddefconfig.
bad=0
while IFS= read -r line; do
    case "$line" in ''|'#'*) continue;; esac
    opt=${line%%=*}; val=${line#*=}
    if [ "$val" = n ]; then
        grep -q "^$opt=" .config && { say "config: $opt should be off"; bad=1; }
    else
        grep -qx "$line" .config || { say "config: wanted $line, got: $(grep "^$opt=\|^# $opt " .config || echo none)"; bad=1; }
    fi
done < "$here/kconfig/writeboost.config"
[ $bad = 0 ] || { echo "[kernel] the config fragment does not apply cleanly" >&2; exit 1; }
say "compiling (make -j$(( $(nproc) + 1 )) bzImage modules)"
kmake -j$(( $(nproc) + 1 )) bzImage modules >&2
touch .wb-built
say "kernel ready at $kdir"
echo "$kdir"
