#!/usr/bin/env bash
# Long guest runs that do not fit make test's time budget: every script in
# tests/soak/, one guest boot. Prints the guest's verdict; exits non-zero
# on any failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
exec python3 "$here/guest.py" run --timeout 3600 --test-timeout 1200 "$root"/tests/soak/*.sh
