#!/usr/bin/env bash
# A long crash-durability soak: the SIGKILL test of tests/crash_durability.rs with many
# rounds (default 200). Usage: scripts/crash-soak.sh [ROUNDS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tusk-target}"
export TUSK_CRASH_ROUNDS="${1:-200}"
[ -n "${2:-}" ] && export TUSK_CRASH_SEED="$2"
cargo test --release -p tusk-cli --test crash_durability -- --nocapture
