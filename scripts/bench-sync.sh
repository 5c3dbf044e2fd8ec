#!/usr/bin/env bash
# Sync benchmarks on the issue-size caseload (300 people, 2,000 visits, in one team), for a
# person to run: about 15 minutes, most of it typing days' work and pulling the caseload.
# CI runs only the smoke version of the small in-process bench (`cargo test --all-targets`).
#
#   scripts/bench-sync.sh                 every scenario
#   RUNS=1 LOAD_DEVICES=50 LOAD_TEAM_SIZES=10 scripts/bench-sync.sh
#                                          fewer repeats, devices and load runs, to try it out
#
# The caseload and a server database seeded with it are cached under target/bench-data/ (the
# first run generates them: about two minutes). The load test runs the server binary pinned to
# CPU 0 and this load generator pinned to CPU 1. Rows go to target/bench-data/sync-report.md,
# details (per run) to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release -p outpost-tests -p outpost-server --bins
bench="$target_dir/release/sync-bench"
server="$target_dir/release/outpost-server"
report="$target_dir/bench-data/sync-report.md"
mkdir -p "$target_dir/bench-data"

runs=${RUNS:-}
run_args() { if [[ -n "$runs" ]]; then echo "--runs $runs"; fi; }

if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then
    pin_load=(taskset -c 1)
    pin_server=(--server-cpu 0)
else
    echo "fewer than two CPUs or no taskset: the load test runs unpinned" >&2
    pin_load=()
    pin_server=()
fi

{
    echo "sync benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    "$bench" header
    # shellcheck disable=SC2046
    "$bench" pull $(run_args)
    # shellcheck disable=SC2046
    "$bench" days-work $(run_args)
    # shellcheck disable=SC2046
    "$bench" noop $(run_args)
    # shellcheck disable=SC2046
    "$bench" rural $(run_args)
    echo
    # Teams of 10 as the load; teams of 5 halve what each phone receives from its teammates,
    # which shows how much of the latency is the phones' own work on the one generator CPU.
    first=1
    for team_size in ${LOAD_TEAM_SIZES:-10 5}; do
        header=()
        if [[ $first == 0 ]]; then header=(--no-header); fi
        first=0
        "${pin_load[@]}" "$bench" load --server-bin "$server" "${pin_server[@]}" "${header[@]}" \
            --devices "${LOAD_DEVICES:-200}" --seconds "${LOAD_SECONDS:-30}" --team-size "$team_size"
    done
} | tee "$report"

cargo bench -p outpost-tests --bench sync
echo "report written to $report"
