#!/usr/bin/env bash
# MapReduce on real processes with a tracker killed: a namenode, three datanodes on
# 127.0.0.1-3, a jobtracker and a tasktracker beside each datanode (every one its own
# process). A wordcount over ~200 MB runs; as soon as one tracker holds finished map output,
# it is killed with SIGKILL. The job must still succeed with the same output as a run on an
# undisturbed cluster, the counters must show the maps that ran again, and no map output may
# be left on any tracker's disk afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=mapreduce-faults
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
SIZE_MB="${SIZE_MB:-200}"

cat > "$WORK/tusk.toml" <<EOF
[namenode]
heartbeat_expiry_ms = 8000

[datanode]
heartbeat_interval_ms = 500

[mapreduce]
tracker_expiry_ms = 5000
heartbeat_interval_ms = 300
map_slots = 2
reduce_slots = 2
EOF
export TUSK_CONF="$WORK/tusk.toml"
start_namenode
export TUSK_MAPREDUCE__NAMENODE=$NN
for i in 1 2 3; do
  TUSK_DATANODE__ADVERTISE_HOST=127.0.0.$i "$TUSK" datanode --namenode "$NN" --xfer-address 127.0.0.$i:0 \
    --data-dir "$WORK/dn$i" > "$WORK/dn$i.out" 2> "$WORK/dn$i.log" &
  PIDS+=($!)
done
wait_for 30 "3 live datanodes" bash -c "[ \$('$TUSK' dfsadmin -report -live | grep -c '^Name: ') = 3 ]"
JT_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export TUSK_MAPREDUCE__JOBTRACKER=127.0.0.1:$JT_PORT
TUSK_MAPREDUCE__JOBTRACKER_DIR="$WORK/jt" "$TUSK" jobtracker > "$WORK/jt.out" 2> "$WORK/jt.log" &
PIDS+=($!)
declare -A TT_PID
for i in 1 2 3; do
  TUSK_MAPREDUCE__SHUFFLE_ADDRESS=127.0.0.$i:0 TUSK_MAPREDUCE__LOCAL_DIR="$WORK/tt$i" \
    "$TUSK" tasktracker > "$WORK/tt$i.out" 2> "$WORK/tt$i.log" &
  TT_PID[$i]=$!
  PIDS+=($!)
done
wait_for 30 "3 tasktrackers joined" bash -c "[ \$(grep -c 'tasktracker joined' '$WORK/jt.log') = 3 ]"

step "input: ${SIZE_MB} MB of text, 16 MiB blocks"
python3 - "$WORK/text" "$SIZE_MB" <<'PY'
import random, sys
path, mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
vocab = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 8))) for _ in range(5000)]
with open(path, "w") as f:
    n = 0
    while n < mb * 1_000_000:
        s = "\n".join(" ".join(rng.choices(vocab, k=rng.randint(3, 12))) for _ in range(2000)) + "\n"
        f.write(s)
        n += len(s)
PY
"$TUSK" fs -D dfs.blocksize=16m -put "$WORK/text" /text
tr -s '[:space:]' '\n' < "$WORK/text" | grep -v '^$' | LC_ALL=C sort | LC_ALL=C uniq -c | awk '{print $2 "\t" $1}' > "$WORK/expected"

step "wordcount; SIGKILL of the first tracker that holds finished map output"
"$TUSK" job run wordcount /text /counts -r 3 > "$WORK/job.out" 2>&1 & JOB=$!
victim=""
for _ in $(seq 600); do
  for i in 1 2 3; do
    if find "$WORK/tt$i" -name file.index 2>/dev/null | grep -q .; then victim=$i; break 2; fi
  done
  sleep 0.05
done
[ -n "$victim" ] || fail "no map finished"
kill -9 "${TT_PID[$victim]}"
echo "   killed tasktracker $victim (pid ${TT_PID[$victim]})"
wait "$JOB" || fail "the job failed: $(cat "$WORK/job.out")"
grep -v "^ map" "$WORK/job.out" | sed 's/^/   /'
for p in $("$TUSK" fs -ls /counts | awk '{print $NF}' | grep part-r-); do "$TUSK" fs -cat "$p"; done | LC_ALL=C sort > "$WORK/got"
cmp "$WORK/expected" "$WORK/got" || fail "the output differs from coreutils' count"
echo "   output identical to coreutils' count ($(wc -l < "$WORK/got") words)"
maps=$(sed -n 's/^map 100% (\([0-9]*\)\/.*/\1/p' "$WORK/job.out")
launched=$(sed -n 's/^\tLAUNCHED_MAPS=//p' "$WORK/job.out")
echo "   maps: $maps, map attempts launched: $launched"
[ "$launched" -gt "$maps" ] || fail "no map ran again"
wait_for 10 "no map output left on the live trackers" bash -c "[ \$(find '$WORK'/tt[123] -mindepth 1 -path '*job_*' 2>/dev/null | grep -v '^$WORK/tt$victim' | wc -l) = 0 ]"
echo
echo "mapreduce-faults: passed"
