#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, in-process namesystem tests and the
# end-to-end tests that drive the real `tusk` binary (which cargo builds for them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tusk-target}"
export CARGO_TERM_COLOR=never
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast
