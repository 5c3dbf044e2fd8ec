#!/usr/bin/env bash
# Scale benchmarks (issue 7, items 4 and 5), for a person to run: about 40 minutes, most of it
# setting up 1,000 phones three times and seeding 50,000 documents twice. Not part of the test
# suite; needs PostgreSQL (OUTPOST_BENCH_POSTGRES, default the local one the tests use).
#
#   1. memory: the server holding 1,000, 10,000 and 50,000 documents, on SQLite and on
#      PostgreSQL: a fresh device pulls them all, then 4 devices push a day's work at once; the
#      server's peak RSS (VmHWM) and RSS after (`sync-bench memory`)
#   2. load: 1,000 devices, a day's work each, arriving over 60 s (open loop), against one
#      server process on SQLite, one on PostgreSQL, and two on PostgreSQL (`sync-bench load`)
#
#   scripts/bench-scale.sh
#   DOCS=1000,5000 LOAD_DEVICES=100 LOAD_SECONDS=10 scripts/bench-scale.sh    to try it out
#   SERVER_CPU=1 LOAD_CPU=0 scripts/bench-scale.sh      the other way round, if CPU 0 is busy
#
# Server processes run pinned to CPU 0, the load generator (and the memory bench's devices) to
# CPU 1 (SERVER_CPU, LOAD_CPU); PostgreSQL's own processes are not pinned. Each run keeps its records in a PostgreSQL
# schema of its own, dropped at its end. Rows go to target/bench-data/scale-report.md, details
# (seeding, RSS round by round, per-process figures, slowest requests) to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release -p outpost-tests -p outpost-server --bins
bench="$target_dir/release/sync-bench"
server="$target_dir/release/outpost-server"
report="$target_dir/bench-data/scale-report.md"
mkdir -p "$target_dir/bench-data"
postgres=${OUTPOST_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
docs=${DOCS:-1000,10000,50000}
devices=${LOAD_DEVICES:-1000}
seconds=${LOAD_SECONDS:-60}
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}

if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then
    pin_load=(taskset -c "$load_cpu")
    pin_server=(--server-cpu "$server_cpu")
    pinning="server processes pinned to CPU $server_cpu, the load generator to CPU $load_cpu, PostgreSQL unpinned"
else
    echo "fewer than two CPUs or no taskset: the benches run unpinned" >&2
    pin_load=()
    pin_server=()
    pinning="unpinned"
fi

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
step() { echo "bench-scale: $*; load average $(loadavg)" >&2; }
# A run that fails (a load run whose syncs failed prints its row first) does not stop the rest.
run() { "${pin_load[@]}" "$bench" "$@" || echo "(that run failed with exit status $?: see stderr)"; }

{
    echo "scale benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) CPUs, $pinning; load average at the start $(loadavg)"
    echo
    step "memory, SQLite"
    run memory --server-bin "$server" "${pin_server[@]}" --docs "$docs"
    step "memory, PostgreSQL"
    run memory --server-bin "$server" "${pin_server[@]}" --docs "$docs" --database-url "$postgres" --no-header
    echo
    step "load, SQLite, one process"
    run load --server-bin "$server" "${pin_server[@]}" --devices "$devices" --seconds "$seconds"
    step "load, PostgreSQL, one process"
    run load --server-bin "$server" "${pin_server[@]}" --devices "$devices" --seconds "$seconds" \
        --database-url "$postgres" --no-header
    step "load, PostgreSQL, two processes"
    run load --server-bin "$server" "${pin_server[@]}" --devices "$devices" --seconds "$seconds" \
        --database-url "$postgres" --servers 2 --no-header
    echo
    echo "load average at the end $(loadavg)"
} | tee "$report"

echo "report written to $report"
