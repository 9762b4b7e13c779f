#!/usr/bin/env bash
# build-xcframework.sh — builds the XCFramework of the Swift package's binary target, zipped,
# with the checksum SwiftPM wants for it.
#
# Static libraries (libwitan.a) for
#   aarch64-apple-ios        (devices)
#   aarch64-apple-ios-sim    (simulator on Apple silicon)  \ combined with lipo into one
#   x86_64-apple-ios         (simulator on Intel Macs)     / simulator slice
# each with the generated C header and module map (module WitanFFI, from ios/Sources/WitanFFI,
# which bindings/generate.sh --check keeps in step with the code), packed by
# `xcodebuild -create-xcframework`. Output in ios/build/:
#   WitanFFI.xcframework            Package.swift uses it as a local binary target when present
#   WitanFFI.xcframework.zip        what a release publishes
#   WitanFFI.xcframework.zip.sha256 `swift package compute-checksum` of the zip
# With --release-url URL (where the zip will be published), the `releasedXCFramework` line of
# Package.swift is rewritten with that URL and the checksum; commit it and tag the release
# with the same zip attached, and SwiftPM can then take the package by the repository's URL.
#
# The deployment target is Package.swift's iOS version (IPHONEOS_DEPLOYMENT_TARGET), so that
# the C and Rust objects do not ask for a newer iOS than the package declares. OpenSSL
# settings from the environment are cleared: on Apple targets SQLCipher uses CommonCrypto, and
# an OPENSSL_DIR exported on the Mac would switch it to linking an OpenSSL dylib instead.
# Only the staticlib is built (`cargo rustc --crate-type staticlib`), not the cdylib.
#
# Needs macOS with Xcode and rustup. Elsewhere it says so and exits 0, so that a full run
# of the build scripts on Linux does not fail on it. It has not been run yet (no Mac here).
#
# usage: ios/build-xcframework.sh [--profile PROFILE] [--release-url URL]   (default: release)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/.." && pwd -P)
PROFILE=release
RELEASE_URL=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE=${2:?--profile needs a value}; shift ;;
    --release-url) RELEASE_URL=${2:?--release-url needs a value}; shift ;;
    *) echo "build-xcframework.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "build-xcframework.sh: $*" >&2; exit 1; }

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
IOS_VERSION=$(sed -n 's/.*\.iOS(\.v\([0-9][0-9]*\)).*/\1/p' Package.swift | head -n 1)
[ -n "$IOS_VERSION" ] || die "no .iOS(.vN) platform in Package.swift"
export IPHONEOS_DEPLOYMENT_TARGET=$IOS_VERSION.0
unset OPENSSL_DIR OPENSSL_LIB_DIR OPENSSL_INCLUDE_DIR OPENSSL_STATIC OPENSSL_NO_VENDOR

rustup target add "${TARGETS[@]}"
for t in "${TARGETS[@]}"; do
  cargo rustc -p witan --lib --crate-type staticlib --profile "$PROFILE" --target "$t"
done

BUILD=$HERE/build
WORK=$BUILD/work
ZIP=$BUILD/$FFI.xcframework.zip
rm -rf "$WORK" "$BUILD/$FFI.xcframework" "$ZIP" "$ZIP.sha256"
mkdir -p "$WORK/headers" "$WORK/ios-simulator"
cp "$HERE/Sources/$FFI/$FFI.h" "$HERE/Sources/$FFI/module.modulemap" "$WORK/headers/"

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

# SwiftPM wants the .xcframework directory at the top of the zip.
(cd "$BUILD" && ditto -c -k --sequesterRsrc --keepParent "$FFI.xcframework" "$ZIP")
CHECKSUM=$(swift package --package-path "$REPO" compute-checksum "$ZIP")
echo "$CHECKSUM" >"$ZIP.sha256"
echo "build-xcframework.sh: wrote $BUILD/$FFI.xcframework, $ZIP (checksum $CHECKSUM)"

if [ -n "$RELEASE_URL" ]; then
  line="let releasedXCFramework: (url: String, checksum: String)? = (url: \"$RELEASE_URL\", checksum: \"$CHECKSUM\")"
  grep -q '^let releasedXCFramework: ' Package.swift || die "no releasedXCFramework line in Package.swift"
  tmp=$(mktemp)
  awk -v line="$line" '/^let releasedXCFramework: /{print line; next} {print}' Package.swift >"$tmp"
  mv "$tmp" Package.swift
  echo "build-xcframework.sh: Package.swift now points at $RELEASE_URL; commit it, tag, and publish the zip there"
fi
