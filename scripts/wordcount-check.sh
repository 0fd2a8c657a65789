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
python3 - "$WORK/text" "$SIZE_MB" <<'PY'
import random, sys
path, mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 12))) for _ in range(20000)]
weights = [1.0 / (i + 1) for i in range(len(vocab))]
target = mb * 1_000_000
with open(path, "w") as f:
    n = 0
    while n < target:
        words = rng.choices(vocab, weights, k=20000)
        chunk = []
        for i in range(0, len(words), rng.randint(5, 15)):
            chunk.append(" ".join(words[i:i + rng.randint(5, 15)]))
        s = "\n".join(chunk) + "\n"
        f.write(s)
        n += len(s)
PY
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
