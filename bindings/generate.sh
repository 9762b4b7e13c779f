#!/usr/bin/env bash
# generate.sh — generates the Kotlin and Swift bindings of the witan library with UniFFI.
#
# Builds the `uniffi-bindgen` tool (cargo feature `bindgen`) and the library with the given
# profile, then runs uniffi-bindgen in library mode on target/<profile>/lib<name>.so.
# Names come from uniffi.toml next to Cargo.toml (Kotlin package dev.witan, Swift module
# Witan with the C module WitanFFI). Output, at stable paths (one copy of each file):
#   bindings/kotlin/dev/witan/witan.kt
#   ios/Sources/Witan/Witan.swift, ios/Sources/WitanFFI/WitanFFI.h and module.modulemap
#   (the Swift package's layout, placed by ios/sync-bindings.sh)
#
# usage: bindings/generate.sh [--check] [--profile PROFILE]
#   --check   regenerate into a temporary directory and fail if the checked-in bindings
#             differ from it.
# Other settings: see scripts/lib/common.sh (WITAN_CRATE_DIR, WITAN_LIB_NAME, ...).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CHECK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --check) CHECK=1 ;;
    --profile) WITAN_PROFILE=${2:?--profile needs a value}; shift ;;
    --profile=*) WITAN_PROFILE=${1#--profile=} ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "generate.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
# shellcheck source=scripts/lib/common.sh
. "$HERE/../scripts/lib/common.sh"

die() { echo "generate.sh: $*" >&2; exit 1; }

TARGET=$(witan_target_dir)
BINDGEN=$TARGET/debug/uniffi-bindgen
(cd "$WITAN_CRATE_DIR" && cargo build --quiet --features bindgen --bin uniffi-bindgen) \
  || die "building uniffi-bindgen failed"
witan_build_lib || exit 1

OUT=$(mktemp -d "${TMPDIR:-/tmp}/witan-bindings.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
# Library mode reads uniffi.toml through `cargo metadata`, so run from the crate.
for lang in kotlin swift; do
  (cd "$WITAN_CRATE_DIR" && "$BINDGEN" generate "$WITAN_LIB_PATH" --language "$lang" \
    --no-format --out-dir "$OUT/$lang") >"$OUT/$lang.log" 2>&1 \
    || { cat "$OUT/$lang.log" >&2; die "uniffi-bindgen failed for $lang"; }
  grep -i 'warn' "$OUT/$lang.log" >&2 || true
  rm -f "$OUT/$lang.log"
done
[ -n "$(find "$OUT/kotlin" -name '*.kt')" ] || die "no Kotlin file generated"
ls "$OUT"/swift/*.swift >/dev/null 2>&1 || die "no Swift file generated"

if [ "$CHECK" = 1 ]; then
  drift=0
  if ! diff -ru "$WITAN_BINDINGS_DIR/kotlin" "$OUT/kotlin" >"$OUT/kotlin.diff" 2>&1; then
    drift=1
    echo "generate.sh: bindings/kotlin is out of date:" >&2
    head -n 40 "$OUT/kotlin.diff" >&2
  fi
  "$WITAN_REPO/ios/sync-bindings.sh" --check "$OUT/swift" "$WITAN_SWIFT_SOURCES" || drift=1
  [ "$drift" = 0 ] || die "generated bindings differ from the checked-in ones; run bindings/generate.sh"
  echo "generate.sh: bindings are up to date ($(basename "$WITAN_LIB_PATH"), profile $WITAN_PROFILE)"
  exit 0
fi

mkdir -p "$WITAN_BINDINGS_DIR"
rm -rf "${WITAN_BINDINGS_DIR:?}/kotlin"
cp -R "$OUT/kotlin" "$WITAN_BINDINGS_DIR/kotlin"
"$WITAN_REPO/ios/sync-bindings.sh" "$OUT/swift" "$WITAN_SWIFT_SOURCES"
echo "generate.sh: wrote $(cd "$WITAN_BINDINGS_DIR" && find kotlin -type f | sort | tr '\n' ' ')and the Swift sources in $WITAN_SWIFT_SOURCES"
