#!/usr/bin/env bash
# Runs every test Outpost has, exactly as CI does. Installs what the tests need first.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

# One build of every target in the test profile (panic = unwind), shared by unit tests,
# integration tests, and the benches' smoke runs (criterion runs each bench once under `cargo test`).
echo "== tests"
cargo test --workspace --all-targets --locked
