# shellcheck shell=bash
# common.sh — shared settings for the witan binding scripts (sourced, not run).
#
# Every script takes its targets from these variables, so the same scripts can drive the
# witan crate (the defaults) or any other UniFFI crate laid out the same way (a probe):
#   WITAN_CRATE_DIR     the crate to build (default: the repository root)
#   WITAN_LIB_NAME      the cdylib's name, `lib<name>.so` (default: witan)
#   WITAN_PROFILE       cargo profile of the library (default: dev, i.e. target/debug)
#   WITAN_BINDINGS_DIR  generated Kotlin bindings, in kotlin/ below (default: <repo>/bindings)
#   WITAN_SWIFT_PACKAGE the Swift package tested on Linux (default: <repo>, Package.swift)
#   WITAN_SWIFT_SOURCES where the generated Swift goes, <Module>/ and <FFI>/ below
#                       (default: <repo>/ios/Sources)
#   WITAN_KOTLIN_TESTS  the Kotlin JVM host tests (default: <repo>/android/host-tests)
#   WITAN_CACHE         toolchain cache (default: /var/cache/witan)
#   WITAN_SKIP_BUILD=1  use the library as it is in the target directory
# Package and module names come from the crate's uniffi.toml.

WITAN_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
WITAN_CRATE_DIR=$(cd "${WITAN_CRATE_DIR:-$WITAN_REPO}" && pwd -P)
WITAN_LIB_NAME=${WITAN_LIB_NAME:-witan}
WITAN_PROFILE=${WITAN_PROFILE:-dev}
WITAN_BINDINGS_DIR=${WITAN_BINDINGS_DIR:-$WITAN_REPO/bindings}
WITAN_SWIFT_PACKAGE=${WITAN_SWIFT_PACKAGE:-$WITAN_REPO}
WITAN_SWIFT_SOURCES=${WITAN_SWIFT_SOURCES:-$WITAN_REPO/ios/Sources}
WITAN_KOTLIN_TESTS=${WITAN_KOTLIN_TESTS:-$WITAN_REPO/android/host-tests}
WITAN_CACHE=${WITAN_CACHE:-/var/cache/witan}
KOTLIN_HOME=${KOTLIN_HOME:-$WITAN_CACHE/kotlinc/node_modules/kotlin-compiler}

# target/<dir> for a profile: dev and test build into debug/, every other profile into its name.
case "$WITAN_PROFILE" in
  dev | debug | test) WITAN_PROFILE=dev; WITAN_PROFILE_DIR=debug ;;
  *) WITAN_PROFILE_DIR=$WITAN_PROFILE ;;
esac

# The cargo target directory (honours CARGO_TARGET_DIR and .cargo/config).
witan_target_dir() {
  local dir
  dir=$(cd "$WITAN_CRATE_DIR" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  echo "${dir:-$WITAN_CRATE_DIR/target}"
}

# Builds the library with the chosen profile unless WITAN_SKIP_BUILD=1; sets WITAN_LIB_DIR
# and WITAN_LIB_PATH.
witan_build_lib() {
  local target
  target=$(witan_target_dir)
  WITAN_LIB_DIR=$target/$WITAN_PROFILE_DIR
  WITAN_LIB_PATH=$WITAN_LIB_DIR/lib$WITAN_LIB_NAME.so
  if [ "${WITAN_SKIP_BUILD:-0}" != 1 ]; then
    (cd "$WITAN_CRATE_DIR" && cargo build --quiet --lib --profile "$WITAN_PROFILE") \
      || { echo "$(basename "$0"): cargo build --lib --profile $WITAN_PROFILE failed" >&2; return 1; }
  fi
  [ -f "$WITAN_LIB_PATH" ] || { echo "$(basename "$0"): $WITAN_LIB_PATH not found" >&2; return 1; }
}

# sha256 over the names and contents of the files given, sorted by name.
witan_hash_files() {
  local f
  for f in $(printf '%s\n' "$@" | LC_ALL=C sort); do
    printf '%s\n' "$f"
    sha256sum <"$f"
  done | sha256sum | cut -c1-16
}

# Checks that every LOAD segment of an ELF library is aligned to exactly ALIGN (e.g. 0x4000
# for Android's 16 KiB pages); prints the alignments found and fails otherwise.
witan_check_page_align() { # lib align [readelf]
  local aligns
  aligns=$("${3:-readelf}" -lW "$1" | awk '$1 == "LOAD" {print $NF}' | sort -u | tr '\n' ' ')
  aligns=${aligns% }
  echo "$(basename "$1"): LOAD alignment ${aligns:-none}"
  [ "$aligns" = "$2" ]
}
