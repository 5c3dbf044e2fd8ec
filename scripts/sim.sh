#!/usr/bin/env bash
# The simulated network (tests/src/sim.rs) over many seeds, in a release build: five devices
# and the server, with drops, cuts, duplicates, late and stale messages and partitions. Prints
# the faults injected and the result; a failing seed is named, and reruns alone with
# SIM_FIRST=<seed> scripts/sim.sh 1. The test suite runs 500 seeds.
#   scripts/sim.sh [SEEDS]          default 10000
#   SIM_STEPS=120 scripts/sim.sh    longer runs per seed (default: the suite's 36 steps)
set -euo pipefail
cd "$(dirname "$0")/.."
SIM_SEEDS="${1:-10000}" cargo test --release -p outpost-tests --test sim_network -- \
    --ignored --nocapture --exact many_seeds_converge_and_lose_nothing_acknowledged
