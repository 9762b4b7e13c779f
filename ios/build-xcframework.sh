#!/usr/bin/env bash
# build-xcframework.sh — builds ios/build/WitanFFI.xcframework for the Swift package.
#
# Static libraries (libwitan.a, release profile) for
#   aarch64-apple-ios        (devices)
#   aarch64-apple-ios-sim    (simulator on Apple silicon)  \ combined with lipo into one
#   x86_64-apple-ios         (simulator on Intel Macs)     / simulator slice
# each with the generated C header and module map (module WitanFFI), packed by
# `xcodebuild -create-xcframework`. When the XCFramework exists, ios/Package.swift uses it
# as a binary target instead of the system library used by the Linux host tests.
#
# Needs macOS with Xcode and rustup. Elsewhere it says so and exits 0, so that a full run
# of the build scripts on Linux does not fail on it.
#
# usage: ios/build-xcframework.sh [--profile PROFILE]   (default: release)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/.." && pwd -P)
PROFILE=release
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE=${2:?--profile needs a value}; shift ;;
    *) echo "build-xcframework.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$(uname -s)" != Darwin ] || ! command -v xcodebuild >/dev/null 2>&1; then
  echo "build-xcframework.sh: building an XCFramework needs macOS with Xcode (xcodebuild, lipo);"
  echo "build-xcframework.sh: this is $(uname -s), so nothing was built. The Swift bindings are"
  echo "build-xcframework.sh: tested on Linux by scripts/test-swift.sh instead."
  exit 0
fi

LIB=witan
FFI=WitanFFI
TARGETS=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
case "$PROFILE" in dev | debug) PROFILE=dev; PDIR=debug ;; *) PDIR=$PROFILE ;; esac

cd "$REPO"
rustup target add "${TARGETS[@]}"
for t in "${TARGETS[@]}"; do
  cargo build --lib --profile "$PROFILE" --target "$t"
done

# Header and module map as the XCFramework wants them: <FFI>.h + module.modulemap.
bindings/generate.sh --profile "$PROFILE" >/dev/null
BUILD=$HERE/build
WORK=$BUILD/work
rm -rf "$WORK" "$BUILD/$FFI.xcframework"
mkdir -p "$WORK/headers" "$WORK/ios-simulator"
cp "bindings/swift/$FFI.h" "$WORK/headers/"
cp "bindings/swift/$FFI.modulemap" "$WORK/headers/module.modulemap"

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
lipo -create \
  "$TARGET_DIR/aarch64-apple-ios-sim/$PDIR/lib$LIB.a" \
  "$TARGET_DIR/x86_64-apple-ios/$PDIR/lib$LIB.a" \
  -output "$WORK/ios-simulator/lib$LIB.a"

xcodebuild -create-xcframework \
  -library "$TARGET_DIR/aarch64-apple-ios/$PDIR/lib$LIB.a" -headers "$WORK/headers" \
  -library "$WORK/ios-simulator/lib$LIB.a" -headers "$WORK/headers" \
  -output "$BUILD/$FFI.xcframework"
rm -rf "$WORK"
echo "build-xcframework.sh: wrote $BUILD/$FFI.xcframework"
