#!/usr/bin/env bash
# Builds the Outpost core for iOS: the static library for devices and for the simulator (arm64
# and x86_64 in one fat library), packed with the uniffi-generated C header and module map into
# <target>/ios/Outpost.xcframework, plus the generated Swift. It then fills the Swift package in
# bindings/ios (see its README).
#
#   scripts/build-ios.sh
#
# Needs macOS with Xcode (xcodebuild, lipo) and rustup. Environment:
#   IPHONEOS_DEPLOYMENT_TARGET   lowest iOS the library is built for (default 15.0, as Package.swift)
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build-ios: $*" >&2; exit 1; }

[[ "$(uname -s)" == Darwin ]] ||
    die "iOS builds need macOS with Xcode (xcodebuild, lipo); this is $(uname -s)"
for tool in xcodebuild lipo rustup python3; do
    command -v "$tool" >/dev/null || die "$tool not found (install Xcode and its command line tools, and rustup)"
done
# SQLCipher's OpenSSL is built from source for each target (rusqlite's
# bundled-sqlcipher-vendored-openssl): its build runs perl and make.
for tool in perl make; do
    command -v "$tool" >/dev/null || die "$tool not found; the vendored OpenSSL under SQLCipher builds with it"
done
[[ -x scripts/generate-bindings.sh ]] || die "scripts/generate-bindings.sh is missing"

export IPHONEOS_DEPLOYMENT_TARGET=${IPHONEOS_DEPLOYMENT_TARGET:-15.0}
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
out="$target_dir/ios"
package=bindings/ios

device=aarch64-apple-ios
simulators=(aarch64-apple-ios-sim x86_64-apple-ios)

echo "== rustup targets"
rustup target add "$device" "${simulators[@]}"

# Only the staticlib: an xcframework of static libraries links into the app, and the crate's
# cdylib would be a wasted dylib link per target. The native-static-libs note lists the system
# libraries and frameworks it needs (Package.swift links them).
for triple in "$device" "${simulators[@]}"; do
    echo "== building liboutpost.a for $triple (profile mobile: LTO, opt-level s; iOS $IPHONEOS_DEPLOYMENT_TARGET+)"
    cargo rustc -p outpost-bindings --lib --profile mobile --locked --target "$triple" \
        --crate-type staticlib -- --print native-static-libs
done

rm -rf "$out"
mkdir -p "$out/simulator" "$out/headers"
echo "== lipo: one simulator library for arm64 and x86_64"
sim_libs=()
for triple in "${simulators[@]}"; do sim_libs+=("$target_dir/$triple/mobile/liboutpost.a"); done
lipo -create "${sim_libs[@]}" -output "$out/simulator/liboutpost.a"

echo "== generating Swift bindings"
generated="$out/generated"
scripts/generate-bindings.sh "$target_dir/$device/mobile/liboutpost.a" "$generated"
swift="$generated/swift"
for f in outpost.swift outpostFFI.h outpostFFI.modulemap; do
    [[ -f "$swift/$f" ]] || die "generate-bindings.sh produced no swift/$f"
done
# Xcode finds a library's module through a file named exactly module.modulemap in its headers.
cp "$swift/outpostFFI.h" "$out/headers/"
cp "$swift/outpostFFI.modulemap" "$out/headers/module.modulemap"

echo "== xcframework"
xcodebuild -create-xcframework \
    -library "$target_dir/$device/mobile/liboutpost.a" -headers "$out/headers" \
    -library "$out/simulator/liboutpost.a" -headers "$out/headers" \
    -output "$out/Outpost.xcframework"

# The Swift package wants its binary target inside the package, named as the target
# (OutpostCore) and not as the Swift module apps import (Outpost).
echo "== filling the Swift package in $package"
rm -rf "$package/OutpostCore.xcframework"
cp -R "$out/Outpost.xcframework" "$package/OutpostCore.xcframework"
mkdir -p "$package/Sources/Outpost"
cp "$swift/outpost.swift" "$package/Sources/Outpost/outpost.swift"

echo "ios: $out/Outpost.xcframework, Swift package ready in $package"
