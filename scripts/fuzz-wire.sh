#!/usr/bin/env bash
# A long run of the wire fuzz properties (noise and damaged requests and responses are decoded
# or refused by name, never a panic; lengths over the limit are refused before the frame
# arrives), for a person to run; CI runs 256 cases.
#   scripts/fuzz-wire.sh [CASES]     default 100000
set -euo pipefail
cd "$(dirname "$0")/.."
PROPTEST_CASES="${1:-100000}" cargo test --release -p outpost-core --test wire_fuzz -- --nocapture
