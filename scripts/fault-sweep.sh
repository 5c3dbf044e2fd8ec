#!/usr/bin/env bash
# Cuts a day's-work sync at every byte in both directions (CI cuts at every byte near the ends
# and at a stride between). Takes a long time; run it before changing the protocol.
set -euo pipefail
cd "$(dirname "$0")/.."
FAULT_STRIDE="${1:-1}" cargo test --locked -p outpost-tests --test sync_faults \
    a_day_of_work_survives_a_cut_at_every_byte_in_both_directions -- --nocapture
