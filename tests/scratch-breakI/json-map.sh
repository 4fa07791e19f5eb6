#!/bin/bash
# Host: writeboost-recover --json with odd --map values, over a wbimage cache image.
R=/work/main/tools/target/release
cd /tmp/bi
v() { local d="$1"; shift; cp cache.orig cache.img
  out=$("$@" 2>/tmp/bi/err); rc=$?
  if printf '%s' "$out" | python3 -c 'import sys,json; o=json.loads(sys.stdin.buffer.read()); assert isinstance(o,dict); print(o.get("outcome"), "|", o.get("error"), "|", [r.get("code") for r in o.get("refusals",[])] if "refusals" in o else "")' >/tmp/bi/pj 2>/dev/null; then ok="JSON $(cat /tmp/bi/pj)"; else ok=NOTJSON; fi
  printf 'rc=%s %s :: %s\n   %s\n   stderr=%q\n' "$rc" "$d" "$*" "$ok" "$(head -c 300 /tmp/bi/err)"; }
X=$R/writeboost-recover
v ok $X --json --dry-run --ignore-identity --map 1=disk1 cache.img
v nomap $X --json --dry-run cache.img
v dupmap $X --json --dry-run --ignore-identity --map 1=disk1 --map 1=disk1 cache.img
v dupmap2 $X --json --dry-run --ignore-identity --map 1=disk1 --map 1=/nonexistent cache.img
v nodisk $X --json --dry-run --map 1=/nonexistent cache.img
v unknownid $X --json --dry-run --ignore-identity --map 1=disk1 --map 7=disk1 cache.img
v id0 $X --json --dry-run --map 0=disk1 cache.img
v id300 $X --json --dry-run --map 300=disk1 cache.img
v badsyntax $X --json --dry-run --map disk1 cache.img
v emptyval $X --json --dry-run --map 1= cache.img
v emptyid $X --json --dry-run --map =disk1 cache.img
v neg $X --json --dry-run --map -1=disk1 cache.img
v samecache $X --json --dry-run --ignore-identity --map 1=cache.img cache.img
v dir $X --json --dry-run --ignore-identity --map 1=adir cache.img
v devnull $X --json --dry-run --ignore-identity --map 1=/dev/null cache.img
v tinydisk $X --json --dry-run --ignore-identity --map 1=tiny cache.img
v tinydisk-real $X --json --ignore-identity --map 1=tiny cache.img
v quote $X --json --dry-run --ignore-identity --map "1=$(printf 'q"\n\xff')" cache.img
v skip $X --json --dry-run --skip-device 1 cache.img
v skipmap $X --json --dry-run --skip-device 1 --map 1=disk1 cache.img
v skip9 $X --json --dry-run --skip-device 9 cache.img
v real $X --json --ignore-identity --map 1=disk1 cache.img
v realro "chmod0" bash -c "chmod 444 disk1; $X --json --ignore-identity --map 1=disk1 cache.img; chmod 644 disk1"
v rocache bash -c "chmod 444 cache.img; $X --json --ignore-identity --map 1=disk1 cache.img; chmod 644 cache.img"
v notacache $X --json --ignore-identity --map 1=disk1 zero1m
v unknownflag $X --json --bogus cache.img
v cachedir $X --json --map 1=disk1 adir
