#!/usr/bin/env bash
# A long run of the import fuzz property (damaged bytes are refused or imported whole, and a
# refusal changes nothing), for a person to run; CI runs 256 cases.
#   scripts/fuzz-import.sh [CASES]     default 20000
set -euo pipefail
cd "$(dirname "$0")/.."
PROPTEST_CASES="${1:-20000}" cargo test --release -p outpost-core --test import_fuzz -- --nocapture
