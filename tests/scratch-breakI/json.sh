#!/bin/bash
# Host: run each tool with --json over odd inputs; validate stdout as JSON.
R=/work/main/tools/target/release
cd /tmp/bi
v() { # v <desc> cmd...
  local d="$1"; shift
  out=$("$@" 2>/tmp/bi/err); rc=$?
  if printf '%s' "$out" | python3 -c 'import sys,json; o=json.loads(sys.stdin.buffer.read()); assert isinstance(o,dict)' 2>/dev/null; then ok=JSON; else ok=NOTJSON; fi
  printf '%-8s rc=%s %s :: %s\n   stdout=%q\n   stderr=%q\n' "$ok" "$rc" "$d" "$*" "$(printf '%s' "$out"|head -c 300)" "$(head -c 200 /tmp/bi/err)"
}
for t in writeboost-check writeboost-dump writeboost-recover; do
  for p in /nonexistent adir /dev/null empty tiny zero4k zero1m 'q"uo\te' "$(printf 'nl\nname')" "$(printf 'bad\xff\xfe')" "" /proc/self/mem /dev/zero; do
    v "$t" $R/$t --json "$p"
  done
done
