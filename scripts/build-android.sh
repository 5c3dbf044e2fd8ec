#!/usr/bin/env bash
# Builds the Outpost core for Android: liboutpost.so for four ABIs in the jniLibs layout, linked
# for 16 KB pages, plus the Kotlin bindings generated from it. bindings/android/ is the Gradle
# module that picks both up (see its README).
#
#   scripts/build-android.sh [JNI_LIBS_DIR]     default: <target>/android/jniLibs
#
# Needs an Android NDK r27 or newer in ANDROID_NDK_HOME, rustup, and cargo-ndk (installed here
# if missing). Environment:
#   ANDROID_NDK_HOME      the NDK root (the directory holding source.properties)
#   OUTPOST_ANDROID_API   minimum API level the libraries are linked for (default 24, Android 7.0,
#                         the first with the revocation checks rustls-platform-verifier uses)
#   OUTPOST_KOTLIN_OUT    where the generated Kotlin goes (default <target>/android/kotlin; the
#                         Gradle module reads it from there)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..
source scripts/lib/android-flags.sh

die() { echo "build-android: $*" >&2; exit 1; }

target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
jni_libs=${1:-$target_dir/android/jniLibs}
kotlin_out=${OUTPOST_KOTLIN_OUT:-$target_dir/android/kotlin}
api=${OUTPOST_ANDROID_API:-24}

# ABI name (the jniLibs directory) and Rust target triple, in the same order.
abis=(arm64-v8a armeabi-v7a x86_64 x86)
triples=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android)

# --- the NDK: r27+ so the toolchain and Android's 16 KB guidance match what this script assumes.
[[ -n "${ANDROID_NDK_HOME:-}" ]] ||
    die "ANDROID_NDK_HOME is not set; point it at an Android NDK r27 or newer (e.g. \$ANDROID_HOME/ndk/27.2.12479018)"
[[ -f "$ANDROID_NDK_HOME/source.properties" ]] ||
    die "ANDROID_NDK_HOME=$ANDROID_NDK_HOME has no source.properties; point it at an NDK r27+ root"
ndk_revision=$(sed -n 's/^Pkg\.Revision *= *//p' "$ANDROID_NDK_HOME/source.properties" | tr -d '\r')
ndk_major=${ndk_revision%%.*}
[[ "$ndk_major" =~ ^[0-9]+$ && "$ndk_major" -ge 27 ]] ||
    die "ANDROID_NDK_HOME points at NDK ${ndk_revision:-of unknown version}; Outpost needs r27 or newer"
ndk_bin=$(echo "$ANDROID_NDK_HOME"/toolchains/llvm/prebuilt/*/bin)
[[ -x "$ndk_bin/llvm-strip" && -x "$ndk_bin/llvm-readelf" ]] ||
    die "no llvm-strip/llvm-readelf under $ANDROID_NDK_HOME/toolchains/llvm/prebuilt/*/bin"

# SQLCipher's OpenSSL is built from source for each ABI (rusqlite's
# bundled-sqlcipher-vendored-openssl), with the NDK's clang: its build runs perl and make.
for tool in perl make; do
    command -v "$tool" >/dev/null || die "$tool not found; the vendored OpenSSL under SQLCipher builds with it"
done

# RUSTFLAGS would replace the per-target flags below rather than add to them, and the libraries
# would silently lose their 16 KB alignment.
[[ -z "${RUSTFLAGS:-}" && -z "${CARGO_ENCODED_RUSTFLAGS:-}" ]] ||
    die "unset RUSTFLAGS/CARGO_ENCODED_RUSTFLAGS: they override the Android link flags this script sets"

if ! command -v cargo-ndk >/dev/null; then
    echo "== installing cargo-ndk"
    cargo install cargo-ndk --locked
fi
echo "== rustup targets"
rustup target add "${triples[@]}"

# The link flags go to the Android targets only (never to build scripts or proc-macros, which
# run on the host), through cargo's per-target RUSTFLAGS.
for triple in "${triples[@]}"; do
    var="CARGO_TARGET_$(echo "$triple" | tr '[:lower:]-' '[:upper:]_')_RUSTFLAGS"
    export "$var=${OUTPOST_ANDROID_LINK_ARGS[*]}"
done

echo "== building liboutpost.so (profile mobile: LTO, opt-level s; API $api, NDK $ndk_revision) into $jni_libs"
ndk_targets=()
for abi in "${abis[@]}"; do ndk_targets+=(-t "$abi"); done
# Only the cdylib: the crate's staticlib is for iOS, and would be a large archive per ABI here.
cargo ndk --platform "$api" "${ndk_targets[@]}" -o "$jni_libs" \
    rustc -p outpost-bindings --lib --profile mobile --locked --crate-type cdylib

# Kotlin comes from the unstripped arm64 library: uniffi-bindgen reads its metadata from the
# symbol table that stripping removes. Every ABI carries the same metadata.
echo "== generating Kotlin bindings into $kotlin_out"
[[ -x scripts/generate-bindings.sh ]] || die "scripts/generate-bindings.sh is missing"
generated=$(mktemp -d)
trap 'rm -rf "$generated"' EXIT
scripts/generate-bindings.sh "$target_dir/aarch64-linux-android/mobile/liboutpost.so" "$generated"
[[ -d "$generated/kotlin" ]] || die "generate-bindings.sh produced no kotlin/ directory"
rm -rf "${kotlin_out:?}"
mkdir -p "$kotlin_out"
cp -R "$generated/kotlin/." "$kotlin_out/"

echo "== stripping and checking 16 KB alignment"
for abi in "${abis[@]}"; do
    lib="$jni_libs/$abi/liboutpost.so"
    [[ -f "$lib" ]] || die "cargo ndk did not produce $lib"
    "$ndk_bin/llvm-strip" --strip-unneeded "$lib"
    outpost_check_load_align "$ndk_bin/llvm-readelf" "$lib" "$OUTPOST_PAGE_ALIGN" ||
        die "$lib is not aligned for 16 KB pages"
done

echo "android: 4 ABIs in $jni_libs ($(du -sh "$jni_libs" | cut -f1)), Kotlin in $kotlin_out"
