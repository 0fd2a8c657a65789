#!/usr/bin/env bash
# Profiles the namenode for benchmarks 5 and 6 (nn-memory, nn-cluster) with perf (cpu-clock
# samples: this kind of VM has no hardware counters):
#   1. `tusk-bench nn-memory` on FILES files, recorded with its children (the namenode
#      processes): the namenode's start-up from the fsimage and three full block reports.
#   2. `tusk-bench nn-cluster` on CFILES files with 1,000 simulated datanodes: the namenode
#      process alone, attached during the first window of heartbeats.
# Prints the busiest symbols of each. Needs `perf` (Debian: apt-get install linux-perf) and the
# release build (cargo build --release -p tusk-cli -p tusk-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tusk-target}"
B="$CARGO_TARGET_DIR/release/tusk-bench"
W="$(mktemp -d /tmp/tusk-bench-profile-nn.XXXXXX)"
BPID=
cleanup() { [ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
top() { # FILE [perf report filters]: the busiest symbols (head closes the pipe early: not a failure)
  local f="$1"; shift
  perf report -i "$f" "$@" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep % | sed 's/  */ /g' |
    cut -c1-140 | head -"${TOP:-25}" || true
}

echo "== nn-memory --files ${FILES:-300000}: start-up from the image and block reports (namenode processes only)"
perf record -q -e cpu-clock -F 499 -g -o "$W/mem.data" -- \
  "$B" nn-memory --files "${FILES:-300000}" --runs 1 --no-replay --dir "$W/mem" > "$W/mem.out"
tail -3 "$W/mem.out"
top "$W/mem.data"

echo "== nn-cluster --files ${CFILES:-100000}: the namenode during heartbeats of 1,000 datanodes"
"$B" nn-cluster --files "${CFILES:-100000}" --runs 1 --cpu-secs 15 --nn-files 2000 --nn-reads 10000 \
  --dir "$W/cluster" > "$W/cluster.out" 2>&1 &
BPID=$!
until grep -q "CPU window 1 idle" "$W/cluster.out"; do
  kill -0 "$BPID" 2>/dev/null || { cat "$W/cluster.out"; exit 1; }
  sleep 1
done
NN=$(pgrep -P "$BPID" | head -1)
sleep 3 # heartbeats settle (one interval)
perf record -q -e cpu-clock -F 999 -g -p "$NN" -o "$W/hb.data" -- sleep 15
wait "$BPID"; BPID=
grep "CPU window" "$W/cluster.out"
top "$W/hb.data"
