#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, in-process namesystem tests and the
# end-to-end tests that drive the real `tusk` binary (which cargo builds for them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh libclang-dev fuse3
# One profile for everything (release): the tests, the scripts, the demo, the benchmarks and
# the container image share one build of RocksDB's C++ (~20 minutes on 2 cores per profile).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tusk-target}"
export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --release --workspace --all-targets --no-fail-fast 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo prints one "test result" per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
[ "$rc" = 0 ] || exit "$rc"
# The compose cluster end to end (image, containers) with the binary the tests just built;
# it reports itself as SKIPPED when no Docker engine answers.
TUSK_BIN="$CARGO_TARGET_DIR/release/tusk" bash compose/smoke.sh
