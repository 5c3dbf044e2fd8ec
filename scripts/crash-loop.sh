#!/usr/bin/env bash
# Kills a writing child process 1,000 times at random points, on one store, and checks after
# every kill that the store opens and holds every edit the API had reported saved (the test is
# tests/tests/crash.rs). For a human to run, e.g. before a release: `cargo test` runs the same
# test with 100 kills, and this takes several minutes.
#
# Usage: scripts/crash-loop.sh [kills]    CRASH_SEED=<n> replays a failing run's kill schedule.
# On failure the store is kept and its path printed.
set -euo pipefail
cd "$(dirname "$0")/.."

kills="${1:-1000}"
started=$(date +%s)
CRASH_ITERATIONS="$kills" cargo test --release -p outpost-tests --test crash -- --nocapture
echo "crash-loop: $kills kills, every reported save survived ($(($(date +%s) - started)) s including the build)"
