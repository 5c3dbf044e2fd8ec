#!/usr/bin/env bash
# The size of the core shared library as the phones get it: the `mobile` profile, stripped, for
# this host (x86_64), and what dominates it (symbol bytes by crate, from the unstripped copy).
# Usage: scripts/size-report.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
cargo build --profile mobile -p outpost-bindings --lib --locked
lib=$target_dir/mobile/liboutpost.so
stripped=$(mktemp)
trap 'rm -f "$stripped"' EXIT
strip --strip-unneeded -o "$stripped" "$lib"

bytes=$(stat -c %s "$stripped")
echo "liboutpost.so (profile mobile, x86_64, stripped): $bytes bytes ($(numfmt --to=iec-i --suffix=B "$bytes"))"
echo "largest contributors (symbol bytes by crate; generic code is counted under the crate"
echo "that defines it, so core/alloc stand for monomorphised std code; C symbols are SQLite's"
echo "or ring's):"
nm -C -S --size-sort "$lib" | awk '
    NF >= 4 {
        size = strtonum("0x" $2)
        name = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", name)
        sub(/^<+/, "", name); sub(/^&(mut )?/, "", name)
        if (name ~ /^sqlite3|^fts5|^sqlite/) crate = "sqlite (C)"
        else if (name ~ /^ring_core|^ecp_nistz|^p256|^x25519|^aes_/ || name ~ /_nistz256|^GFp|^CRYPTO_/) crate = "ring (C, asm)"
        else if (index(name, "::") > 0) { crate = substr(name, 1, index(name, "::") - 1) }
        else crate = "other C"
        total[crate] += size
    }
    END { for (c in total) printf "%10d  %s\n", total[c], c }' | sort -rn | head -15
