#!/usr/bin/env bash
# MapReduce on real processes, with faults: a namenode, three datanodes on 127.0.0.1-3, a
# jobtracker and a tasktracker beside each datanode (every one its own process).
#
#  1. A wordcount over ~200 MB; as soon as one tracker holds finished map output, it is
#     killed with SIGKILL. The job must still succeed with coreutils' answer, the counters
#     must show the maps that ran again, and no map output may be left on any tracker.
#  2. That tracker comes back slow (every attempt waits 8 s first): a wordcount over 48 MB
#     with speculation, then with `-D mapreduce.map.speculative=false`; `tusk job status`
#     shows the speculative attempts and the first run ends sooner.
#  3. A streaming mapper (shipped with -file) that exits 1 on a third of its first attempts
#     and sleeps 5 s on another third: coreutils' answer, and a watcher polling the output
#     path never sees it without _SUCCESS.
#  4. Bad input: an existing output, a missing input, an unknown job, a mapper command that
#     does not exist: each exits 1 with the reason and leaves nothing at the output path.
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

step "1. wordcount; SIGKILL of the first tracker that holds finished map output"
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

no_map_output_left() {
  wait_for 10 "no map output left on any tracker" bash -c "[ \$(find '$WORK'/tt[123] -mindepth 1 -path '*job_*' 2>/dev/null | wc -l) = 0 ]"
}
job_id() { sed -n 's/^Running job: //p' "$1"; }
elapsed() { sed -n 's/^Elapsed: \([0-9.]*\)s$/\1/p' "$1"; }

step "2. tracker $victim back, slow (8 s before every attempt); speculation on, then off"
rm -rf "$WORK/tt$victim"
TUSK_MAPREDUCE__SLOW_DOWN_MS=8000 TUSK_MAPREDUCE__SHUFFLE_ADDRESS=127.0.0.$victim:0 TUSK_MAPREDUCE__LOCAL_DIR="$WORK/tt$victim" \
  "$TUSK" tasktracker > "$WORK/tt$victim.out" 2> "$WORK/tt$victim.slow.log" &
PIDS+=($!)
wait_for 30 "the slow tracker joined" bash -c "[ \$(grep -c 'tasktracker joined' '$WORK/jt.log') -ge 4 ]"
head -c 48000000 "$WORK/text" | sed '$d' > "$WORK/small"
"$TUSK" fs -D dfs.blocksize=4m -put "$WORK/small" /small
tr -s '[:space:]' '\n' < "$WORK/small" | grep -v '^$' | LC_ALL=C sort | LC_ALL=C uniq -c | awk '{print $2 "\t" $1}' > "$WORK/expected-small"
check_small() { # check_small DIR
  for p in $("$TUSK" fs -ls "$1" | awk '{print $NF}' | grep part-r-); do "$TUSK" fs -cat "$p"; done | LC_ALL=C sort > "$WORK/got-small"
  cmp "$WORK/expected-small" "$WORK/got-small" || fail "$1 differs from coreutils' count"
}
"$TUSK" job run wordcount /small /spec-on -r 2 > "$WORK/spec-on.out" 2>&1 || fail "$(cat "$WORK/spec-on.out")"
"$TUSK" job run wordcount -D mapreduce.map.speculative=false /small /spec-off -r 2 > "$WORK/spec-off.out" 2>&1 || fail "$(cat "$WORK/spec-off.out")"
check_small /spec-on
check_small /spec-off
on=$(job_id "$WORK/spec-on.out")
"$TUSK" job status "$on" > "$WORK/spec-status.out"
spec=$(sed -n 's/^\tSPECULATIVE_MAPS=//p' "$WORK/spec-status.out")
echo "   tusk job status $on: SPECULATIVE_MAPS=${spec:-0}"
[ "${spec:-0}" -ge 1 ] || fail "no speculative attempt: $(cat "$WORK/spec-status.out")"
"$TUSK" job history "$on" | grep -E "SPECULATIVE|KILLED" | head -4 | sed 's/^/   /'
t_on=$(elapsed "$WORK/spec-on.out"); t_off=$(elapsed "$WORK/spec-off.out")
echo "   with speculation ${t_on}s, without ${t_off}s; both outputs identical to coreutils'"
awk -v a="$t_on" -v b="$t_off" 'BEGIN { exit !(a < b) }' || fail "speculation did not make the job end sooner"
no_map_output_left

step "3. a flaky streaming mapper: exit 1 on a third of first attempts, 5 s stall on another third"
cat > "$WORK/flaky.sh" <<'SH'
#!/bin/sh
p=$mapreduce_task_partition
case "$mapreduce_task_attempt_id" in
  *_0)
    if [ $((p % 3)) -eq 0 ]; then echo "failing on purpose" >&2; exit 1; fi
    if [ $((p % 3)) -eq 1 ]; then sleep 5; fi
    ;;
esac
exec tr -s ' \t' '\n' | grep -v '^$' | sed 's/$/\t1/'
SH
cat > "$WORK/sum.py" <<'PY'
import sys
cur, n = None, 0
for line in sys.stdin:
    k, v = line.rstrip("\n").split("\t", 1)
    if k != cur:
        if cur is not None:
            print(f"{cur}\t{n}")
        cur, n = k, 0
    n += int(v)
if cur is not None:
    print(f"{cur}\t{n}")
PY
# The watcher: whenever the output path exists, its _SUCCESS must too.
( while [ ! -e "$WORK/flaky.done" ]; do
    if "$TUSK" fs -test -e /flaky 2>/dev/null && ! "$TUSK" fs -test -e /flaky/_SUCCESS 2>/dev/null; then
      echo partial > "$WORK/flaky.partial"
    fi
    sleep 0.2
  done ) &
WATCHER=$!
"$TUSK" job streaming -input /small -output /flaky -mapper "sh flaky.sh" -reducer "python3 sum.py" \
  -file "$WORK/flaky.sh" -file "$WORK/sum.py" -numReduceTasks 2 > "$WORK/flaky.out" 2>&1 || fail "$(cat "$WORK/flaky.out")"
touch "$WORK/flaky.done"; wait "$WATCHER"
[ ! -e "$WORK/flaky.partial" ] || fail "a partial output directory was seen"
check_small /flaky
echo "   identical to coreutils' count; $(sed -n 's/^\tFAILED_ATTEMPTS=//p' "$WORK/flaky.out") failed attempts; no partial output seen"
no_map_output_left

step "4. bad input: each a clear error, exit 1, nothing at the output path"
expect_error() { # expect_error OUT MESSAGE ARGS...
  local out=$1 msg=$2; shift 2
  if "$TUSK" job "$@" > "$WORK/bad.out" 2>&1; then fail "tusk job $* succeeded"; fi
  grep -q "$msg" "$WORK/bad.out" || fail "tusk job $*: no '$msg' in: $(cat "$WORK/bad.out")"
  if [ "$out" != /counts ] && "$TUSK" fs -test -e "$out"; then fail "$out exists after a failed job"; fi
  echo "   tusk job $*: $(grep -m1 "$msg" "$WORK/bad.out")"
}
expect_error /counts "already exists" run wordcount /text /counts
expect_error /o1 "Input path does not exist" run wordcount /missing /o1
expect_error /o2 "Unknown job" run nosuchjob /text /o2
expect_error /o3 "exit code 127" streaming -input /small -output /o3 -mapper no-such-command-xyz
[ "$("$TUSK" fs -ls / | grep -c '/\.o3\.')" = 0 ] || fail "the failed job's staging directory is left"
no_map_output_left
echo
echo "mapreduce-faults: passed"
