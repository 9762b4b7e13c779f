#!/usr/bin/env bash
# build-rust.sh — builds libwitan.so for the Android ABIs with cargo-ndk.
#
# ABIs: arm64-v8a (aarch64-linux-android), armeabi-v7a (armv7-linux-androideabi), x86
# (i686-linux-android), x86_64 (x86_64-linux-android); API level 24 (the module's minSdk).
# Output: <out>/<abi>/libwitan.so, which android/build.gradle.kts packages as jniLibs.
# The link arguments come from build.rs, where no environment variable can drop them:
# 16 KiB page alignment (required by Android 15+ devices with 16 KiB pages) and packed
# relative relocations (`--pack-dyn-relocs=android`, supported by the loader from API 23).
# After the build every library's LOAD segments are checked for the 16 KiB alignment.
# The Rust toolchain is the one pinned in rust-toolchain.toml.
#
# Needs: the Android NDK — ANDROID_NDK_HOME or ANDROID_NDK_ROOT, else ndk/<--ndk-version>
# (build.gradle.kts passes its ndkVersion) or the newest ndk/* under ANDROID_HOME /
# ANDROID_SDK_ROOT / Android Studio's default SDK — `cargo install cargo-ndk` (v3 or v4),
# and the rustup targets (added here if rustup is present).
#
# usage: android/build-rust.sh [--profile release|dev] [--out DIR] [--ndk-version VERSION]
#   defaults: release, android/build/rustJniLibs
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/.." && pwd -P)
# shellcheck source=scripts/lib/common.sh
. "$REPO/scripts/lib/common.sh"
PROFILE=release
OUT=$HERE/build/rustJniLibs
NDK_VERSION=""
API=24
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE=${2:?--profile needs a value}; shift ;;
    --out) OUT=${2:?--out needs a value}; shift ;;
    --ndk-version) NDK_VERSION=${2:?--ndk-version needs a value}; shift ;;
    *) echo "build-rust.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "build-rust.sh: $*" >&2; exit 1; }

if [ -z "${ANDROID_NDK_HOME:-}" ]; then
  if [ -n "${ANDROID_NDK_ROOT:-}" ]; then
    export ANDROID_NDK_HOME=$ANDROID_NDK_ROOT
  else
    # The pinned NDK of an SDK, else its newest (Android Studio's default locations last).
    for sdk in "${ANDROID_HOME:-}" "${ANDROID_SDK_ROOT:-}" "$HOME/Android/Sdk" "$HOME/Library/Android/sdk"; do
      if [ -n "$sdk" ] && [ -d "$sdk/ndk" ]; then
        if [ -n "$NDK_VERSION" ] && [ -d "$sdk/ndk/$NDK_VERSION" ]; then
          ANDROID_NDK_HOME=$sdk/ndk/$NDK_VERSION
        else
          ANDROID_NDK_HOME=$(find "$sdk/ndk" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -n 1)
        fi
        export ANDROID_NDK_HOME
        break
      fi
    done
  fi
fi
if [ -z "${ANDROID_NDK_HOME:-}" ] || [ ! -d "$ANDROID_NDK_HOME" ]; then
  die "no Android NDK found: set ANDROID_NDK_HOME (or ANDROID_NDK_ROOT / ANDROID_HOME with ndk/)"
fi
if [ -n "$NDK_VERSION" ] && [ "$(basename "$ANDROID_NDK_HOME")" != "$NDK_VERSION" ]; then
  echo "build-rust.sh: note: using the NDK in $ANDROID_NDK_HOME, not the pinned $NDK_VERSION" >&2
fi
command -v cargo-ndk >/dev/null || die "cargo-ndk is missing: cargo install cargo-ndk"

ABIS=(arm64-v8a armeabi-v7a x86 x86_64)
TRIPLES=(aarch64-linux-android armv7-linux-androideabi i686-linux-android x86_64-linux-android)
cd "$REPO"
if command -v rustup >/dev/null; then
  rustup target add "${TRIPLES[@]}" >/dev/null
fi

mkdir -p "$OUT"
case "$PROFILE" in
  release) PROFILE_ARGS=(--release) ;;
  dev | debug) PROFILE_ARGS=() ;;
  *) PROFILE_ARGS=(--profile "$PROFILE") ;;
esac
ABI_ARGS=()
for abi in "${ABIS[@]}"; do ABI_ARGS+=(-t "$abi"); done
cargo ndk --platform "$API" "${ABI_ARGS[@]}" -o "$OUT" build -p witan --lib "${PROFILE_ARGS[@]}"

READELF=$(find "$ANDROID_NDK_HOME/toolchains/llvm/prebuilt" -maxdepth 3 -name llvm-readelf 2>/dev/null | head -n 1)
READELF=${READELF:-readelf}
for abi in "${ABIS[@]}"; do
  lib=$OUT/$abi/libwitan.so
  [ -f "$lib" ] || die "missing $lib after the build"
  witan_check_page_align "$lib" 0x4000 "$READELF" || die "$lib is not aligned to 16 KiB pages"
done
echo "build-rust.sh: wrote $OUT/{$(IFS=,; echo "${ABIS[*]}")}/libwitan.so (LOAD segments aligned to 16 KiB)"
