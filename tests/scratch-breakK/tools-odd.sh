#!/bin/bash
# breakK host reproducer for the tools findings (run on the host).
R=/work/main/tools/target/release
T=$(mktemp -d)
truncate -s 8M $T/zero.img
$R/examples/wbimage $T/c.img --segments 8 --device-sectors 4096 --lines 10 >/dev/null
echo "1. -q --json with a usage error: JSON on stdout despite -q"
$R/writeboost-check -q --json --bogus 2>/dev/null; echo " rc=$?"
echo "2. --json=1 (usage error): no JSON on stdout"
$R/writeboost-check --json=1 $T/zero.img 2>/dev/null; echo " rc=$? (stdout above should be JSON)"
echo "3. missing argument: JSON error truncated to the first line"
$R/writeboost-check --json 2>/dev/null; echo " rc=$?"
echo "4. recover --map 0=... / 128=...: a full report with outcome \"refused\" (code usage) and exit 2"
$R/writeboost-recover --json --map 0=$T/zero.img $T/c.img 2>/dev/null | grep -E '"outcome"|"code"'; echo " rc=${PIPESTATUS[0]}"
$R/writeboost-recover --json --skip-device 200 $T/c.img 2>/dev/null | grep -E '"outcome"|"code"'; echo " rc=${PIPESTATUS[0]}"
echo "   versus --map abc=...: the usage-error shape"
$R/writeboost-recover --json --map abc=x $T/c.img 2>/dev/null; echo " rc=$?"
echo "5. dump --segments 0..100 accepted (heading says slots 0..100) but --segments 8..9 refused"
$R/writeboost-dump --segments 0..100 $T/c.img | grep "segments (slots"; echo " rc=$?"
$R/writeboost-dump --segments 8..9 $T/c.img >/dev/null; echo " rc=$?"
echo "6. recover with stdout /dev/full keeps the outcome's status"
cp $T/c.img $T/cw.img; truncate -s 2M $T/b.img
$R/writeboost-recover --map 1=$T/b.img --ignore-identity $T/cw.img >/dev/full; echo " clean rc=$? (expect 0)"
$R/writeboost-recover --map 0=x $T/cw.img >/dev/full; echo " refused-usage rc=$?"
rm -rf $T
