#!/usr/bin/env bash
# wordcount on the pseudo-cluster, checked against coreutils: starts `tusk cluster up` (3
# datanodes, a jobtracker, 3 tasktrackers), puts SIZE_MB (default 500) MB of generated text
# with 32 MiB blocks, runs `tusk job run wordcount`, and compares the part files with
# `tr -s '[:space:]' '\n' | sort | uniq -c` over the same text. Prints the job's counters
# (maps launched, node-local maps) and the times.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=wordcount
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
SIZE_MB="${SIZE_MB:-500}"
PORT="${PORT:-9321}"
start_cluster "$PORT"

step "generate ${SIZE_MB} MB of text"
python3 scripts/gen-text.py "$WORK/text" $(( SIZE_MB * 1000000 ))
ls -l "$WORK/text" | awk '{print "   " $5 " bytes"}'

step "put and run wordcount"
t0=$SECONDS
"$TUSK" fs -D dfs.blocksize=32m -put "$WORK/text" /wc-in.txt
echo "   put: $(( SECONDS - t0 ))s"
t0=$SECONDS
"$TUSK" job run wordcount /wc-in.txt /wc-out -r 3 | tee "$WORK/job.out" | grep -v "^ map" | sed 's/^/   /'
echo "   job: $(( SECONDS - t0 ))s"

step "compare with tr | sort | uniq -c"
t0=$SECONDS
tr -s '[:space:]' '\n' < "$WORK/text" | grep -v '^$' | LC_ALL=C sort | LC_ALL=C uniq -c | awk '{print $2 "\t" $1}' > "$WORK/expected"
echo "   coreutils: $(( SECONDS - t0 ))s"
for p in $("$TUSK" fs -ls /wc-out | awk '{print $NF}' | grep part-r-); do "$TUSK" fs -cat "$p"; done | LC_ALL=C sort > "$WORK/got"
"$TUSK" fs -test -e /wc-out/_SUCCESS || fail "no _SUCCESS"
cmp "$WORK/expected" "$WORK/got" || fail "wordcount differs from coreutils: diff $WORK/expected $WORK/got"
echo "   identical: $(wc -l < "$WORK/got") distinct words"
maps=$(sed -n 's/^\tLAUNCHED_MAPS=//p' "$WORK/job.out")
local=$(sed -n 's/^\tDATA_LOCAL_MAPS=//p' "$WORK/job.out")
echo "   node-local maps: ${local:-0} of $maps"
left=$(find "$WORK"/cluster/mapred* -mindepth 1 2>/dev/null | wc -l)
echo "   map output left on the trackers: $left entries"
[ "$left" = 0 ] || fail "map output left behind"
echo
echo "wordcount-check: passed"
