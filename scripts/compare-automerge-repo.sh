#!/usr/bin/env bash
# Outpost beside the reference automerge-repo sync server (npm @automerge/automerge-repo-sync-server,
# driven by @automerge/automerge-repo clients in Node), the same jobs in one run, for a person to
# run: about 20 minutes, not part of the test suite.
#
#   scripts/compare-automerge-repo.sh
#   SIZES="1000" SKIP_DAYS_WORK=1 scripts/compare-automerge-repo.sh     to try it out
#
# 1. `sync-bench compare export` writes the cached caseload's first 5,000 documents (their saved
#    bytes; the 4,916 documents and the first 84 after the people again under new ids) and 200
#    devices' day's work to target/bench-data/compare/export/.
# 2. Both servers get the same documents: Outpost's a server database per size, the reference
#    its NodeFS storage, seeded with its own automerge-repo (scripts/compare/seed.mjs).
# 3. For each size, a fresh device pulls the first N documents from a server process started
#    for that pull: Outpost's over loopback TLS, the reference's over a WebSocket.
# 4. 200 devices push a day's work each, arriving over 30 s: Outpost's `sync-bench load
#    --team-size 1` (each device pushes its own work and receives nothing, as a reference
#    device does), then scripts/compare/days-work.mjs.
# Servers run pinned to CPU 0, devices and load generators to CPU 1. The table goes to stdout
# and target/bench-data/compare/table.md; per-run details to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --release -p outpost-tests -p outpost-server --bins
bench="$target_dir/release/sync-bench"
server="$target_dir/release/outpost-server"
out="$target_dir/bench-data/compare"
mkdir -p "$out"

# The reference side's packages, as locked. Not `npm ci`: it refuses this lock because the lock
# cannot list cbor-extract's native builds, which the registry here does not serve; they are
# optional (cbor-x, under the sync server's automerge-repo, falls back to plain JavaScript).
(cd scripts/compare && npm install --no-save --no-audit --no-fund --loglevel=error)

if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then
    pin_client=(taskset -c 1)
    server_cpu=(--server-cpu 0)
else
    echo "fewer than two CPUs or no taskset: servers and devices run unpinned" >&2
    pin_client=()
    server_cpu=()
fi

results="$out/results.jsonl"
: >"$results"
echo "compare: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $(uptime)" >&2

"$bench" compare export "$out/export"
node scripts/compare/seed.mjs --export "$out/export" --storage "$out/reference-storage" --ids "$out/reference-ids.json"

for docs in ${SIZES:-1000 2000 5000}; do
    "${pin_client[@]}" "$bench" compare pull --docs "$docs" --server-bin "$server" "${server_cpu[@]}" | tee -a "$results"
    "${pin_client[@]}" node scripts/compare/pull.mjs --export "$out/export" --storage "$out/reference-storage" \
        --ids "$out/reference-ids.json" --docs "$docs" --work "$out/pull-work" "${server_cpu[@]}" | tee -a "$results"
done

load_args=()
if [[ -z "${SKIP_DAYS_WORK:-}" ]]; then
    "${pin_client[@]}" "$bench" load --server-bin "$server" "${server_cpu[@]}" \
        --devices 200 --seconds 30 --team-size 1 --splices-per-save 10 | tee "$out/outpost-load.md"
    "${pin_client[@]}" node scripts/compare/days-work.mjs --export "$out/export" --storage "$out/reference-storage" \
        --work "$out/days-work" "${server_cpu[@]}" --seconds 30 | tee -a "$results"
    load_args=(--load "$out/outpost-load.md")
fi

echo
node scripts/compare/table.mjs --results "$results" "${load_args[@]}" | tee "$out/table.md"
echo "table written to $out/table.md"
