#!/usr/bin/env bash
# `make demo`: boot the guest and show writeboost at work (see tests/demo/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
"$here/setup-toolchain.sh" >/dev/null
"$here/build-module.sh" >/dev/null 2>&1 || "$here/build-module.sh"
echo "Booting the guest kernel (QEMU, TCG) ..."
exec python3 "$here/guest.py" run --show "$root/tests/demo/demo.sh"
