#!/bin/sh
# x.src -> x.sh, src-NAME/bootN.src -> NAME/bootN.sh (common.inc pasted at #INC)
cd "$(dirname "$0")"
paste() { python3 -c "
import sys; inc=open('common.inc').read(); s=open(sys.argv[1]).read().replace('#INC\n',inc); open(sys.argv[2],'w').write(s)" "$1" "$2"; }
for f in *.src; do [ -e "$f" ] && paste $f ${f%.src}.sh; done
for d in src-*/; do [ -d "$d" ] || continue; n=${d#src-}; n=${n%/}; mkdir -p $n; for f in $d*.src; do b=$(basename $f .src); paste $f $n/$b.sh; done; done
