#!/usr/bin/env bash
# test-cross.sh — what this Linux machine can check of witan's mobile targets.
#
# 1. `cargo check` of the library for aarch64-linux-android, armv7-linux-androideabi and
#    aarch64-apple-ios: the Rust code (witan's and every dependency's, with the target's cfgs,
#    e.g. the os_log layer on Apple, 32-bit usize on armv7) type-checks. This machine has no
#    Android NDK and no Apple SDK, so the C parts are not compiled for these targets:
#    scripts/lib/check-only-cc stands in for their C compiler (see there), and the number of
#    C sources it skipped is printed.
# 2. A full cross build for aarch64-unknown-linux-gnu with Debian's cross gcc, the nearest
#    64-bit ARM target whose C library exists here: SQLCipher, the vendored OpenSSL (with its
#    ARMv8 assembly) and the Rust code are compiled and linked for ARM64. Checks:
#    - `readelf`: the cdylib is an AArch64 ELF whose LOAD segments are all aligned to 16 KiB.
#      That alignment comes from build.rs (which gives Android targets and this stand-in the
#      same flag); the build runs with a RUSTFLAGS exported, which is what used to drop it.
#    - tests/native_smoke.rs (encrypted databases, a conversation, a message sent and read)
#      runs under qemu-aarch64 against the cross-built code.
# What none of this shows: bionic, the NDK's clang and lld, JNA loading libwitan.so from an
# APK, Apple's toolchain and frameworks (see README, "Mobile packages").
#
# Builds use the lean profile `ci-cross` (Cargo.toml) in a target directory of their own,
# $WITAN_CACHE/cross-target by default (WITAN_CROSS_TARGET_DIR overrides): a build cache kept
# between runs like the toolchains, so a CI run on a warm machine compiles only witan again.
# Cargo's fingerprints decide what is reused; the artifacts of the workspace's own packages
# (which a clone at another path would build again under new names) are removed first, so the
# cache does not grow with every clone.
# Needs scripts/setup-toolchains.sh (rustup targets, gcc-aarch64-linux-gnu, qemu-user).
# Settings: scripts/lib/common.sh (WITAN_CRATE_DIR, WITAN_CACHE); WITAN_CROSS_STEPS
# (default "check aarch64"; `check` = 1, `aarch64` = 2).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=scripts/lib/common.sh
. "$HERE/lib/common.sh"

die() { echo "test-cross: $*" >&2; exit 1; }
PROFILE=ci-cross
TARGET_DIR=${WITAN_CROSS_TARGET_DIR:-$WITAN_CACHE/cross-target}
STEPS=${WITAN_CROSS_STEPS:-check aarch64}
mkdir -p "$TARGET_DIR"
cd "$WITAN_CRATE_DIR"

installed=$(rustup target list --installed 2>/dev/null || true)
need_target() {
  grep -qx "$1" <<<"$installed" || die "rust std for $1 is missing; run scripts/setup-toolchains.sh"
}
# Cargo's environment variable suffix of a target triple: aarch64_linux_android.
triple_var() { echo "$1" | tr 'a-z-' 'A-Z_'; }
triple_env() { echo "$1" | tr '-' '_'; }

# The workspace's own packages, e.g. "-p witan": their artifacts from earlier runs (other
# clones) go before a build; registry dependencies stay cached.
OWN_PACKAGES=()
while read -r name; do OWN_PACKAGES+=(-p "$name"); done < <(cargo metadata --format-version 1 --no-deps \
  | grep -o '"name":"[^"]*","version":"' | sed 's/"name":"\([^"]*\)".*/\1/')
[ ${#OWN_PACKAGES[@]} -gt 0 ] || die "cargo metadata lists no package"
forget_own() { # target
  cargo clean --quiet "${OWN_PACKAGES[@]}" --target "$1" --profile "$PROFILE" --target-dir "$TARGET_DIR" 2>/dev/null || true
}

check_target() { # target
  local t=$1 start log skipped
  need_target "$t"
  start=$(date +%s)
  log=$TARGET_DIR/check-only-cc-$t.log
  : >"$log"
  forget_own "$t"
  # The cc crate reruns the C build scripts when CC_<triple> changes, so the stand-in is
  # called from a path that is the same for every clone.
  mkdir -p "$TARGET_DIR/bin"
  cmp -s "$HERE/lib/check-only-cc" "$TARGET_DIR/bin/check-only-cc" \
    || install -m 755 "$HERE/lib/check-only-cc" "$TARGET_DIR/bin/check-only-cc"
  local -a env=(
    "CC_$(triple_env "$t")=$TARGET_DIR/bin/check-only-cc"
    "AR_$(triple_env "$t")=ar"
    "WITAN_CHECK_ONLY_CC_LOG=$log"
  )
  case "$t" in
    *-apple-*)
      # No Apple SDK here: an empty directory keeps the cc crate from asking xcrun for one.
      mkdir -p "$TARGET_DIR/no-apple-sdk"
      env+=("SDKROOT=$TARGET_DIR/no-apple-sdk" "IPHONEOS_DEPLOYMENT_TARGET=15.0")
      ;;
  esac
  env "${env[@]}" nice -n 10 cargo check --quiet -p witan --lib --profile "$PROFILE" \
    --target "$t" --target-dir "$TARGET_DIR" \
    || die "cargo check --target $t failed"
  skipped=$(sort -u "$log" | wc -l)
  echo "test-cross: ok: cargo check --target $t ($(( $(date +%s) - start )) s; C sources handed to" \
    "check-only-cc, i.e. not compiled, in this run: $skipped; 0 when the C dependencies are cached)"
}

cross_aarch64() {
  local t=aarch64-unknown-linux-gnu start lib machine v
  need_target "$t"
  command -v aarch64-linux-gnu-gcc >/dev/null || die "aarch64-linux-gnu-gcc missing; run scripts/setup-toolchains.sh"
  command -v qemu-aarch64 >/dev/null || die "qemu-aarch64 missing; run scripts/setup-toolchains.sh"
  v=$(triple_var "$t")
  export "CARGO_TARGET_${v}_LINKER=aarch64-linux-gnu-gcc"
  export "CARGO_TARGET_${v}_RUNNER=qemu-aarch64 -L /usr/aarch64-linux-gnu"
  export "CC_$(triple_env "$t")=aarch64-linux-gnu-gcc"
  export "AR_$(triple_env "$t")=aarch64-linux-gnu-ar"
  # An exported RUSTFLAGS makes Cargo ignore CARGO_TARGET_<triple>_RUSTFLAGS, which is how
  # the 16 KiB flag used to be passed; it must not matter any more.
  export RUSTFLAGS="-C debuginfo=0"
  start=$(date +%s)
  forget_own "$t"
  nice -n 10 cargo build --quiet -p witan --lib --profile "$PROFILE" --target "$t" --target-dir "$TARGET_DIR" \
    || die "cross build for $t failed"
  lib=$TARGET_DIR/$t/$PROFILE/lib$WITAN_LIB_NAME.so
  [ -f "$lib" ] || die "$lib missing after the build"
  echo "test-cross: ok: cargo build --lib --target $t ($(( $(date +%s) - start )) s)"

  machine=$(readelf -hW "$lib" | awk -F: '$1 ~ /Machine/ {gsub(/^ +/, "", $2); print $2}')
  [ "$machine" = AArch64 ] || die "$lib is not an AArch64 library (machine: $machine)"
  witan_check_page_align "$lib" 0x4000 \
    || die "the LOAD segments of $lib are not aligned to 16 KiB (build.rs's max-page-size did not reach the linker)"
  echo "test-cross: ok: AArch64, 16 KiB page alignment"

  start=$(date +%s)
  nice -n 10 cargo test -p witan --profile "$PROFILE" --target "$t" --target-dir "$TARGET_DIR" \
    --test native_smoke || die "the smoke test failed under qemu-aarch64"
  echo "test-cross: ok: tests/native_smoke.rs under qemu-aarch64 ($(( $(date +%s) - start )) s, build included)"
}

for s in $STEPS; do
  case "$s" in
    check)
      for t in aarch64-linux-android armv7-linux-androideabi aarch64-apple-ios; do
        check_target "$t"
      done
      ;;
    aarch64) cross_aarch64 ;;
    *) die "unknown step $s (check, aarch64)" ;;
  esac
done
