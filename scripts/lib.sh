# Helpers shared by the scripted runs on real processes (self-healing.sh, write-recovery.sh).
# Source it after setting NAME (used in the work directory's name); it sets TUSK (the
# release binary: the profile the test suite builds), WORK (the state and logs directory,
# new unless given; removed after a success unless KEEP=1), PIDS (processes to kill on exit) and defines fail, step, wait_for and
# start_namenode.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tusk-target}"
TUSK="${TUSK:-$CARGO_TARGET_DIR/release/tusk}"
[ -x "$TUSK" ] || { echo "build first: cargo build --release --workspace --all-targets" >&2; exit 1; }
WORK="${WORK:-$(mktemp -d "/tmp/tusk-$NAME.XXXXXX")}"
mkdir -p "$WORK"
PIDS=()
# cleanup [STATUS]: stops the processes; after a success (and without KEEP=1) removes WORK,
# whose cluster data can be tens of GB; after a failure keeps it for its logs.
cleanup() {
  local status=${1:-$?}
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$status" = 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() { echo "FAILED: $*" >&2; echo "logs in $WORK" >&2; exit 1; }
step() { echo; echo "== $*"; }
# wait_for SECONDS DESCRIPTION COMMAND...: polls until the command succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local t0=$SECONDS
  until "$@" >/dev/null 2>&1; do
    (( SECONDS - t0 < secs )) || fail "$what (waited ${secs}s)"
    sleep 0.5
  done
  echo "   ok after $(( SECONDS - t0 ))s: $what"
}

# start_namenode: a `tusk namenode` on a free loopback port, state in $WORK/name; sets and
# exports NN and TUSK_NAMENODE.
start_namenode() {
  "$TUSK" namenode --name-dir "$WORK/name" --rpc-address 127.0.0.1:0 > "$WORK/nn.out" 2> "$WORK/nn.log" &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$WORK/nn.out" 2>/dev/null && break; sleep 0.1; done
  NN=$(sed -n 's/.*listening on //p' "$WORK/nn.out")
  [ -n "$NN" ] || fail "namenode did not start"
  export NN TUSK_NAMENODE=$NN
}

# start_cluster PORT: `tusk cluster up` (a namenode on 127.0.0.1:PORT, 3 datanodes, a
# checkpointer, a jobtracker and 3 tasktrackers) with its state in $WORK/cluster; waits for
# 3 live datanodes; exports TUSK_NAMENODE and TUSK_MAPREDUCE__JOBTRACKER.
start_cluster() {
  "$TUSK" cluster up --dir "$WORK/cluster" --port "$1" > "$WORK/cluster.out" 2> "$WORK/cluster.log" &
  PIDS+=($!)
  export TUSK_NAMENODE=127.0.0.1:$1
  wait_for 30 "the cluster is up" grep -q "jobtracker" "$WORK/cluster.out"
  TUSK_MAPREDUCE__JOBTRACKER=$(sed -n 's/^  jobtracker \([0-9.:]*\) .*/\1/p' "$WORK/cluster.out")
  export TUSK_MAPREDUCE__JOBTRACKER
  wait_for 30 "3 live datanodes" bash -c "[ \$('$TUSK' dfsadmin -report -live | grep -c '^Name: ') = 3 ]"
}
