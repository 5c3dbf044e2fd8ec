#!/usr/bin/env bash
# Host check that the Android link flags (scripts/lib/android-flags.sh, the ones
# scripts/build-android.sh links every ABI with) give 16 KB-aligned LOAD segments, as Android 15+
# and Google Play require. The NDK is not needed: the host linker honours the same -z flag.
#
#   scripts/check-page-alignment.sh
#
# Runs in CI after `cargo test` (scripts/test.sh). It relinks only the bindings crate, in the dev
# profile and target directory that `cargo test --workspace --all-targets` already filled, so no
# dependency is rebuilt. It links the library twice, with and without the flags, and requires
# the unflagged one to FAIL the check: a check that cannot tell the two apart proves nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
source scripts/lib/android-flags.sh

die() { echo "check-page-alignment: $*" >&2; exit 1; }
start=$SECONDS

readelf=$(command -v readelf || command -v llvm-readelf) ||
    die "needs readelf (binutils) or llvm-readelf on PATH"

target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
mkdir -p "$target_dir"
work=$(mktemp -d "$target_dir/page-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Each link writes to a private path (rustc's `--emit link=PATH`), never to target/debug: the
# shared liboutpost.so is what the Kotlin and Python tests load, another build may be relinking
# it meanwhile, and `cargo rustc` would otherwise overwrite it with a cdylib-only build. A fresh
# path per run also makes cargo rerun the link every time, so the check always inspects a library
# this run produced. Cost: cargo records these arguments as the bindings crate's last build, so
# the next plain build recompiles that one crate and relinks what links it (no dependency).
# Both links drop debug info: it is not loaded (no LOAD segment) and would be most of the link
# time and 140 MB of output; the release libraries built for Android carry none either.
relink() { # OUT [RUSTC ARGS...]
    local out=$1
    shift
    cargo rustc -q -p outpost-bindings --lib --crate-type cdylib --locked -- \
        -C strip=debuginfo "$@" --emit "link=$out"
    [[ -f "$out" ]] || die "cargo rustc did not write $out"
}

flagged="$work/liboutpost-16k.so"
plain="$work/liboutpost-plain.so"
relink "$flagged" "${OUTPOST_ANDROID_LINK_ARGS[@]}"
relink "$plain"

# Negative control: the same library linked without the flags must fall below 16 KB.
plain_min=$(outpost_min_load_align "$readelf" "$plain") || die "cannot read the LOAD segments of $plain"
((plain_min < OUTPOST_PAGE_ALIGN)) ||
    die "$(printf 'the library linked WITHOUT the Android flags is already aligned to 0x%x, so this check cannot show the flags work (does a .cargo/config or RUSTFLAGS add -z max-page-size?)' "$plain_min")"

outpost_check_load_align "$readelf" "$flagged" "$OUTPOST_PAGE_ALIGN" ||
    die "the Android link flags (${OUTPOST_ANDROID_LINK_ARGS[*]}) do not give 16 KB pages"

segments=$(outpost_load_segments "$readelf" "$flagged" | wc -l | tr -d ' ')
flagged_min=$(outpost_min_load_align "$readelf" "$flagged")
printf 'page alignment: ok, %d LOAD segments aligned to 0x%x with the Android link flags (0x%x without) in %ds\n' \
    "$segments" "$flagged_min" "$plain_min" "$((SECONDS - start))"
