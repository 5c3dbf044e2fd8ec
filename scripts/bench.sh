#!/usr/bin/env bash
# Store benchmarks on the issue-size caseload (300 people, 2,000 visits), for a person to run;
# CI runs only the smoke version (`cargo test -p outpost-tests --benches`).
#
#   scripts/bench.sh               generate the caseload if it is not cached, then bench and report
#   REGENERATE=1 scripts/bench.sh  generate it afresh first (to time generation again)
#
# The caseload is cached under target/bench-data/ (on the real disk: the benches measure fsync).
# Results: criterion's output and target/criterion/, and the report in target/bench-data/report.md.
# The store bench times opening and editing twice, on the store unencrypted and encrypted
# (`*_encrypted`), for the cost of encryption at rest.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release -p outpost-tests --bins --benches

if [[ "${REGENERATE:-0}" == "1" ]]; then
    rm -f "$target_dir"/bench-data/caseload-*-p300-v2000-*
fi
cargo run --release -q -p outpost-tests --bin generate-caseload -- --bench-cache

cargo bench -p outpost-tests --bench store

report="$target_dir/bench-data/report.md"
cargo run --release -q -p outpost-tests --bin bench-report | tee "$report"
echo "report written to $report"
