#!/usr/bin/env bash
# test.sh — the Kotlin and Swift tests of witan-net's UniFFI export, against the one native
# library that holds witan and witan-net (libwitan_net_ffi):
#   1. generate.sh           (builds the library and generates witan-net's bindings into
#                             the target directory; witan's part must equal bindings/)
#   2. Kotlin on the JVM     (scripts/test-kotlin.sh with bindings/kotlin/…/witan.kt and
#                             witan_net.kt compiled together; witan's bindings are pointed at
#                             the library by uniffi.component.witan.libraryOverride)
#   3. Swift on Linux        (scripts/test-swift.sh on swift/, whose one Swift module holds
#                             Witan.swift and WitanNet.swift; Sources/ is filled here)
# Prints `kotlin: N passed, N failed` and `swift: N passed, N failed` like the main scripts.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)

TARGET=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
STAGE=${TARGET:-$REPO/target}/witan-net-ffi
GENERATED=$STAGE/bindings
"$HERE/generate.sh" "$GENERATED"
export WITAN_CRATE_DIR=$HERE WITAN_LIB_NAME=witan_net_ffi WITAN_SKIP_BUILD=1

# The files only change when their content does, so the test scripts' caches stay valid.
copy() { mkdir -p "$(dirname "$2")"; cmp -s "$1" "$2" || cp "$1" "$2"; }

copy "$REPO/bindings/kotlin/dev/witan/witan.kt" "$STAGE/kotlin-bindings/kotlin/dev/witan/witan.kt"
copy "$GENERATED/kotlin/dev/witan/net/witan_net.kt" "$STAGE/kotlin-bindings/kotlin/dev/witan/net/witan_net.kt"
WITAN_BINDINGS_DIR=$STAGE/kotlin-bindings WITAN_KOTLIN_TESTS=$HERE/kotlin-tests \
  WITAN_JAVA_OPTS="-Duniffi.component.witan.libraryOverride=witan_net_ffi ${WITAN_JAVA_OPTS:-}" \
  "$REPO/scripts/test-kotlin.sh"

PKG=$HERE/swift
copy "$REPO/ios/Sources/Witan/Witan.swift" "$PKG/Sources/WitanNet/Witan.swift"
copy "$REPO/ios/Sources/WitanFFI/WitanFFI.h" "$PKG/Sources/WitanFFI/WitanFFI.h"
copy "$REPO/ios/Sources/WitanFFI/module.modulemap" "$PKG/Sources/WitanFFI/module.modulemap"
# witan-net's generated Swift (WitanNet.swift, WitanNetFFI.h, its module map) in the same layout.
"$REPO/ios/sync-bindings.sh" "$GENERATED/swift" "$PKG/Sources"
WITAN_SWIFT_PACKAGE=$PKG "$REPO/scripts/test-swift.sh"
