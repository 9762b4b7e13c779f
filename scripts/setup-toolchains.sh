#!/usr/bin/env bash
# setup-toolchains.sh — installs what the binding tests need, idempotently.
#
# Owns the host toolchain for the Kotlin (JVM) and Swift (Linux) binding tests:
#   - Debian packages: a JDK (openjdk-17-jdk-headless, unless javac is already there),
#     libjna-java, junit5 (console launcher), debootstrap, and nodejs/npm if npm is missing;
#   - kotlinc (the full compiler distribution of the npm package `kotlin-compiler`) in
#     $WITAN_CACHE/kotlinc; its lib/ also provides kotlinx-coroutines-core-jvm 1.8.0;
#   - Swift 6 (Debian trixie's `swiftlang`) in a trixie chroot at $WITAN_CACHE/swift-trixie,
#     created by scripts/swift-chroot.sh --ensure;
#   - for the mobile packaging checks (scripts/test-r8.sh, scripts/test-cross.sh): Maven
#     (R8 and JNA are fetched with it), Debian's aarch64 cross gcc with its glibc, qemu-user,
#     the Rust toolchain pinned in rust-toolchain.toml, and its std for the Android ABIs,
#     aarch64-apple-ios and aarch64-unknown-linux-gnu (`rustup target add`).
# Everything is checked first, so a second run costs well under a second. Output of apt,
# npm and debootstrap goes to $WITAN_SETUP_LOG, not the console. Run as root on Debian 12.
#
# Environment: WITAN_CACHE (default /var/cache/witan), KOTLIN_VERSION (default 2.4.20),
# WITAN_SETUP_LOG (default $WITAN_CACHE/setup.log), WITAN_SKIP_SWIFT=1 / WITAN_SKIP_KOTLIN=1 /
# WITAN_SKIP_CROSS=1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CACHE=${WITAN_CACHE:-/var/cache/witan}
KOTLIN_VERSION=${KOTLIN_VERSION:-2.4.20}
export WITAN_SETUP_LOG=${WITAN_SETUP_LOG:-$CACHE/setup.log}
LOG=$WITAN_SETUP_LOG
KOTLIN_PREFIX=$CACHE/kotlinc
KOTLIN_HOME=$KOTLIN_PREFIX/node_modules/kotlin-compiler

say() { echo "setup: $*"; }
die() {
  echo "setup: ERROR: $*" >&2
  if [ -f "$LOG" ]; then echo "--- last lines of $LOG ---" >&2; tail -n 25 "$LOG" >&2; fi
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get, debootstrap, chroot)"
mkdir -p "$CACHE" "$(dirname "$LOG")"
START=$(date +%s)
echo "=== setup-toolchains $(date -u +%FT%TZ) ===" >>"$LOG"

# --- Debian packages -------------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing=()
# The bundled SQLCipher's vendored OpenSSL is configured with perl and built with make and cc.
command -v perl >/dev/null || missing+=(perl)
command -v make >/dev/null || missing+=(make)
command -v cc >/dev/null || missing+=(gcc libc6-dev)
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
for p in libjna-java junit5 debootstrap; do
  installed "$p" || missing+=("$p")
done
command -v mvn >/dev/null || missing+=(maven)
if [ "${WITAN_SKIP_CROSS:-0}" != 1 ]; then
  for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user; do
    installed "$p" || missing+=("$p")
  done
fi
if [ "${WITAN_SKIP_KOTLIN:-0}" != 1 ] && ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]} (log: $LOG)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >>"$LOG" 2>&1 || die "apt-get update failed"
  apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1 \
    || die "apt-get install ${missing[*]} failed"
  say "Debian packages installed ($(( $(date +%s) - START )) s)"
fi
for f in /usr/share/java/jna.jar /usr/share/java/junit-platform-console-standalone.jar \
         /usr/share/java/junit-jupiter-api.jar; do
  [ -f "$f" ] || die "expected $f after installing libjna-java and junit5"
done

# --- kotlinc ---------------------------------------------------------------------------
kotlin_ok() {
  [ -x "$KOTLIN_HOME/bin/kotlinc" ] && [ -f "$KOTLIN_HOME/lib/kotlinx-coroutines-core-jvm.jar" ] \
    && grep -q "\"version\": *\"$KOTLIN_VERSION\"" "$KOTLIN_HOME/package.json" 2>/dev/null
}
if [ "${WITAN_SKIP_KOTLIN:-0}" != 1 ] && ! kotlin_ok; then
  say "installing kotlinc $KOTLIN_VERSION into $KOTLIN_PREFIX (log: $LOG)"
  rm -rf "$KOTLIN_PREFIX"
  mkdir -p "$KOTLIN_PREFIX"
  npm install --no-audit --no-fund --no-update-notifier --save-exact \
    --prefix "$KOTLIN_PREFIX" "kotlin-compiler@$KOTLIN_VERSION" >>"$LOG" 2>&1 \
    || die "npm install kotlin-compiler@$KOTLIN_VERSION failed"
  kotlin_ok || die "kotlinc $KOTLIN_VERSION not found in $KOTLIN_HOME after npm install"
  say "kotlinc installed ($(( $(date +%s) - START )) s)"
fi

# --- Swift chroot ----------------------------------------------------------------------
if [ "${WITAN_SKIP_SWIFT:-0}" != 1 ]; then
  SWIFT_ROOT=${SWIFT_ROOT:-$CACHE/swift-trixie} "$HERE/swift-chroot.sh" --ensure \
    || die "creating the Swift chroot failed"
fi

# --- Rust toolchain pinned in rust-toolchain.toml ---------------------------------------
# rustup picks the pinned toolchain from rust-toolchain.toml for every cargo call in the
# repository; installed here when missing (this machine's image already has it).
PINNED=$(sed -n 's/^channel *= *"\([^"]*\)".*/\1/p' "$HERE/../rust-toolchain.toml" 2>/dev/null | head -n 1)
if [ -n "$PINNED" ] && command -v rustup >/dev/null \
   && ! rustup toolchain list | grep -q "^$PINNED-"; then
  say "installing Rust $PINNED, pinned in rust-toolchain.toml (log: $LOG)"
  (cd / && rustup toolchain install "$PINNED" --profile minimal -c rustfmt -c clippy) >>"$LOG" 2>&1 \
    || die "rustup toolchain install $PINNED failed"
fi

# --- Rust std for the cross checks ------------------------------------------------------
# The Android ABIs (android/build-rust.sh), iOS devices and 64-bit ARM Linux (the last
# two and arm64-v8a and armeabi-v7a are checked by scripts/test-cross.sh). The simulator
# targets of iOS are not among them: the dist server reachable here does not serve their std.
CROSS_TARGETS=(aarch64-linux-android armv7-linux-androideabi i686-linux-android x86_64-linux-android
  aarch64-apple-ios aarch64-unknown-linux-gnu)
if [ "${WITAN_SKIP_CROSS:-0}" != 1 ] && command -v rustup >/dev/null; then
  have=$(cd "$HERE/.." && rustup target list --installed)
  want=()
  for t in "${CROSS_TARGETS[@]}"; do
    grep -qx "$t" <<<"$have" || want+=("$t")
  done
  if [ ${#want[@]} -gt 0 ]; then
    say "adding rustup targets: ${want[*]} (log: $LOG)"
    (cd "$HERE/.." && rustup target add "${want[@]}") >>"$LOG" 2>&1 \
      || die "rustup target add ${want[*]} failed"
  fi
fi

# --- Rust components used by the checks ------------------------------------------------
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null; then
      say "adding rustup component $c"
      rustup component add "$c" >>"$LOG" 2>&1 || die "rustup component add $c failed"
    else
      die "cargo $c is missing and rustup is not available"
    fi
  fi
done

say "toolchains ready in $(( $(date +%s) - START )) s (kotlinc $KOTLIN_VERSION, $(javac -version 2>&1), swift chroot ${SWIFT_ROOT:-$CACHE/swift-trixie})"
