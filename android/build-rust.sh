#!/usr/bin/env bash
# build-rust.sh — builds libwitan.so for the Android ABIs with cargo-ndk.
#
# ABIs: arm64-v8a (aarch64-linux-android), armeabi-v7a (armv7-linux-androideabi),
# x86_64 (x86_64-linux-android); API level 24 (the module's minSdk). Output:
# <out>/<abi>/libwitan.so, which android/build.gradle.kts packages as jniLibs.
# The libraries are linked with 16 KB page alignment (required by Android 15+ devices
# with 16 KB pages), and with their relative relocations packed (build.rs adds
# `--pack-dyn-relocs=android`, which the loader supports from API 23).
#
# Needs: the Android NDK (ANDROID_NDK_HOME or ANDROID_NDK_ROOT, or an ndk/ under
# ANDROID_HOME / ANDROID_SDK_ROOT / Android Studio's default SDK), `cargo install cargo-ndk`
# (v3 or v4), and the rustup targets
# (added here if rustup is present).
#
# usage: android/build-rust.sh [--profile release|dev] [--out DIR]
#   defaults: release, android/build/rustJniLibs
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/.." && pwd -P)
PROFILE=release
OUT=$HERE/build/rustJniLibs
API=24
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE=${2:?--profile needs a value}; shift ;;
    --out) OUT=${2:?--out needs a value}; shift ;;
    *) echo "build-rust.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "build-rust.sh: $*" >&2; exit 1; }

if [ -z "${ANDROID_NDK_HOME:-}" ]; then
  if [ -n "${ANDROID_NDK_ROOT:-}" ]; then
    export ANDROID_NDK_HOME=$ANDROID_NDK_ROOT
  else
    # The newest NDK of an SDK (Android Studio's default locations last).
    for sdk in "${ANDROID_HOME:-}" "${ANDROID_SDK_ROOT:-}" "$HOME/Android/Sdk" "$HOME/Library/Android/sdk"; do
      if [ -n "$sdk" ] && [ -d "$sdk/ndk" ]; then
        ANDROID_NDK_HOME=$(find "$sdk/ndk" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -n 1)
        export ANDROID_NDK_HOME
        break
      fi
    done
  fi
fi
if [ -z "${ANDROID_NDK_HOME:-}" ] || [ ! -d "$ANDROID_NDK_HOME" ]; then
  die "no Android NDK found: set ANDROID_NDK_HOME (or ANDROID_NDK_ROOT / ANDROID_HOME with ndk/)"
fi
command -v cargo-ndk >/dev/null || die "cargo-ndk is missing: cargo install cargo-ndk"

TRIPLES=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android)
if command -v rustup >/dev/null; then
  rustup target add "${TRIPLES[@]}" >/dev/null
fi

# 16 KB page alignment, for every Android target only (the host build is unaffected).
for t in "${TRIPLES[@]}"; do
  var=CARGO_TARGET_$(echo "$t" | tr 'a-z-' 'A-Z_')_RUSTFLAGS
  export "$var=${!var:-} -C link-arg=-Wl,-z,max-page-size=16384"
done

mkdir -p "$OUT"
cd "$REPO"
case "$PROFILE" in
  release) PROFILE_ARGS=(--release) ;;
  dev | debug) PROFILE_ARGS=() ;;
  *) PROFILE_ARGS=(--profile "$PROFILE") ;;
esac
cargo ndk --platform "$API" -t arm64-v8a -t armeabi-v7a -t x86_64 -o "$OUT" \
  build --lib "${PROFILE_ARGS[@]}"
for abi in arm64-v8a armeabi-v7a x86_64; do
  [ -f "$OUT/$abi/libwitan.so" ] || die "missing $OUT/$abi/libwitan.so after the build"
done
echo "build-rust.sh: wrote $OUT/{arm64-v8a,armeabi-v7a,x86_64}/libwitan.so"
