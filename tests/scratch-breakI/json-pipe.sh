#!/bin/bash
# Host: closed/short stdout with --json (head -c1, >&-, /dev/full).
R=/work/main/tools/target/release; cd /tmp/bi; cp cache.orig cache.img
for c in "writeboost-dump --json --lines cache.img" "writeboost-dump --json /nonexistent" "writeboost-check --json cache.img" "writeboost-check --json /nonexistent" "writeboost-recover --json --dry-run --ignore-identity --map 1=disk1 cache.img" "writeboost-recover --json /nonexistent" "writeboost-recover --json --map 1=disk1 --map 1=disk1 cache.img"; do
  cp cache.orig cache.img
  $R/$c 2>/tmp/bi/e1 | head -c1 >/dev/null; r1=${PIPESTATUS[0]}
  $R/$c >&- 2>/tmp/bi/e2; r2=$?
  $R/$c >/dev/full 2>/tmp/bi/e3; r3=$?
  $R/$c >/dev/null 2>/dev/null; r0=$?
  printf '%s\n  normal=%s headc1=%s [%s]  closed=%s [%s]  full=%s [%s]\n' "$c" $r0 $r1 "$(tail -c 150 /tmp/bi/e1|tr '\n' ' ')" $r2 "$(tail -c 150 /tmp/bi/e2|tr '\n' ' ')" $r3 "$(tail -c 150 /tmp/bi/e3|tr '\n' ' ')"
done
