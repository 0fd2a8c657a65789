#!/usr/bin/env bash
# Profiles Tusk's data path with perf (cpu-clock samples, system-wide, since this kind of VM has
# no hardware counters): a 1 GiB `tusk fs -put` and `tusk fs -cat` on a private pseudo-cluster
# (3 datanodes, replication 3), then an in-process and an over-RPC nn-throughput run. Prints
# the busiest threads and symbols of each. Needs `perf` (Debian: apt-get install linux-perf)
# and the release build (cargo build --release -p tusk-cli -p tusk-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tusk-target}"
T="$CARGO_TARGET_DIR/release/tusk"
B="$CARGO_TARGET_DIR/release/tusk-bench"
W="$(mktemp -d /tmp/tusk-bench-profile.XXXXXX)"
CPID=
cleanup() { [ -n "$CPID" ] && kill "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
# top FILE: the busiest threads and symbols (head closes the pipe early: not a failure).
top() {
  perf report -i "$1" --no-children --sort comm --stdio -g none 2>/dev/null | grep % | cut -c1-60 | head -6 || true
  perf report -i "$1" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep % | sed 's/  */ /g' |
    cut -c1-120 | head -20 || true
}
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
TUSK_LOG=warn "$T" cluster up --dir "$W/state" --port "$PORT" > "$W/cluster.out" 2> "$W/cluster.log" &
CPID=$!
export TUSK_NAMENODE=127.0.0.1:$PORT
for _ in $(seq 120); do grep -q jobtracker "$W/cluster.out" && break; sleep 0.5; done
for _ in $(seq 120); do [ "$("$T" dfsadmin -report -live 2>/dev/null | grep -c '^Name: ')" = 3 ] && break; sleep 0.5; done
head -c $((1 << 30)) /dev/urandom > "$W/src"
perf record -q -e cpu-clock -F 999 -a -g -o "$W/write.data" -- "$T" fs -put "$W/src" /f
perf record -q -e cpu-clock -F 999 -a -g -o "$W/read.data" -- sh -c "'$T' fs -cat /f > /dev/null"
echo "== write: tusk fs -put of 1 GiB"; top "$W/write.data"
echo "== read: tusk fs -cat of 1 GiB"; top "$W/read.data"
kill "$CPID"; wait "$CPID" 2>/dev/null || true; CPID=
rm -rf "$W/state" "$W/src"
perf record -q -e cpu-clock -F 499 -g -o "$W/inproc.data" -- \
  "$B" nn-throughput --runs 1 --files 20000 --reads 1000000 --mode inproc --dir "$W/nn" > /dev/null
echo "== namenode in-process (all operations)"; top "$W/inproc.data"
perf record -q -e cpu-clock -F 499 -a -g -o "$W/rpc.data" -- \
  "$B" nn-throughput --runs 1 --files 5000 --rpc-reads 150000 --mode rpc --dir "$W/nn" > /dev/null
echo "== namenode over RPC (all operations, both processes)"; top "$W/rpc.data"
