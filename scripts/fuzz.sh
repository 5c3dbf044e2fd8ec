#!/usr/bin/env bash
# Runs every cargo-fuzz target (tests/fuzz) for a set time, one after another with one worker
# each, starting from the committed seeds (tests/fuzz/corpus/<target>); the inputs libFuzzer
# adds go to tests/fuzz/target/corpus/<target> and are kept between runs, and crashers go to
# tests/fuzz/artifacts/<target>/ (keep them: tests/tests/fuzz_corpus.rs replays them). Prints
# libFuzzer's final figures per target and a table; exits non-zero if any target crashed.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default 60 seconds, every target
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 900                stop a target early at that many runs
#   FUZZ_FORK=1 scripts/fuzz.sh 900 document_load         keep going past out-of-memory and
#                                                          timeouts (libFuzzer's fork mode, one worker)
set -euo pipefail
cd "$(dirname "$0")/../tests"

seconds="${1:-60}"
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

if (( $# > 0 )); then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build "${targets[@]:0:1}" >/dev/null # the shared dependencies, once
mkdir -p fuzz/target/logs

failed=0
summary=()
for target in "${targets[@]}"; do
    work="fuzz/target/corpus/$target"
    log="fuzz/target/logs/$target.log"
    mkdir -p "$work" "fuzz/artifacts/$target"
    crashes_before=$(find "fuzz/artifacts/$target" -type f | wc -l)
    echo "== $target: ${seconds}s"
    status=0
    fork=()
    [[ -n "${FUZZ_FORK:-}" ]] && fork=(-fork=1 -ignore_ooms=1 -ignore_timeouts=1)
    cargo +nightly fuzz run "$target" "$work" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} "${fork[@]}" \
        -print_final_stats=1 -timeout=20 -rss_limit_mb=4096 >"$log" 2>&1 || status=$?
    crashes=$(( $(find "fuzz/artifacts/$target" -type f | wc -l) - crashes_before ))
    (( status == 0 && crashes == 0 )) || failed=1
    runs=$(grep -oP 'stat::number_of_executed_units:\s*\K[0-9]+' "$log" | tail -1 || true)
    secs=$(grep -oP '^Done [0-9]+ runs in \K[0-9]+' "$log" | tail -1 || true)
    rate=$(grep -oP 'stat::average_exec_per_sec:\s*\K[0-9]+' "$log" | tail -1 || true)
    corpus=$(find "$work" -type f | wc -l)
    grep -E '^(Done|stat::)|SUMMARY|panicked' "$log" || tail -n 20 "$log"
    summary+=("$(printf '%-16s %12s %8s %10s %8s %8s' "$target" "${runs:-?}" "${secs:-$seconds}" "${rate:-?}" "$corpus" "$crashes")")
done

echo
printf '%-16s %12s %8s %10s %8s %8s\n' target executions seconds exec/s corpus crashes
printf '%s\n' "${summary[@]}"
exit "$failed"
