#!/bin/sh
# Inlines common.sh into the scripts (the guest only gets the test files).
cd "$(dirname "$0")"
for f in $(cd src && find . -name '*.sh'); do
  mkdir -p "$(dirname "$f")"
  awk '/^\. \/wb\/tests\/scratch-breakN\/common.sh$/ { while ((getline l < "common.sh") > 0) print l; next } { print }' "src/$f" > "$f"
done
