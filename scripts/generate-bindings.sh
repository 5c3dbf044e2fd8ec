#!/usr/bin/env bash
# Generates the Kotlin, Swift and Python bindings from a compiled Outpost library, with the
# uniffi-bindgen built from the same uniffi version as the library.
# Usage: scripts/generate-bindings.sh [LIBRARY] [OUT_DIR]
#   LIBRARY  liboutpost.so / .dylib / .a (default: target/debug/liboutpost.so, built if missing)
#   OUT_DIR  default: target/bindings; receives kotlin/, swift/ and python/
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
library=${1:-$target_dir/debug/liboutpost.so}
out=${2:-$target_dir/bindings}
bindgen=$target_dir/debug/uniffi-bindgen

if [[ ! -x $bindgen || ( $# -eq 0 && ! -f $library ) ]]; then
    cargo build -p outpost-bindings --locked
fi
[[ -f $library ]] || { echo "no library at $library" >&2; exit 1; }

rm -rf "$out"
for language in kotlin swift python; do
    # --no-format: ktlint and swift-format are not needed to use the output.
    "$bindgen" generate --library "$library" --language "$language" --no-format --out-dir "$out/$language" >/dev/null
done
echo "bindings for $(basename "$library") in $out: kotlin/, swift/, python/"
