#!/usr/bin/env bash
# Runs every test Outpost has, exactly as CI does. Installs what the tests need first.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== tools the tests use"
# The Kotlin compiler (npm's kotlin-compiler) and JNA (Debian's libjna-java) run the generated
# Kotlin bindings and the demo; Python 3 runs the generated Python.
npm ci --prefix scripts/tools --no-audit --no-fund --loglevel=error
if [[ ! -f /usr/share/java/jna.jar ]]; then
    sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends libjna-java
fi

echo "== formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

# One build of every target in the test profile (panic = unwind), shared by unit tests,
# integration tests, and the benches' smoke runs (criterion runs each bench once under `cargo test`).
echo "== tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-targets --locked 2>&1 | tee "$log"

# The Android link flags (16 KB pages), checked on a host relink of the bindings crate only.
echo "== page alignment"
scripts/check-page-alignment.sh

# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
