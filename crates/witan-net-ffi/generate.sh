#!/usr/bin/env bash
# generate.sh — generates the Kotlin and Swift bindings of witan-net from the one native
# library that holds witan and witan-net (libwitan_net_ffi), with UniFFI in library mode.
#
# The output is UniFFI's, not code of this repository, so it is not checked in: an app (or
# test.sh) generates it from the library it links, which keeps the two from drifting.
# Written under OUT_DIR (default: <cargo target dir>/witan-net-ffi/bindings), names from
# crates/witan-net/uniffi.toml:
#   OUT_DIR/kotlin/dev/witan/net/witan_net.kt                 (package dev.witan.net)
#   OUT_DIR/swift/WitanNet.swift, WitanNetFFI.h, WitanNetFFI.modulemap
# witan's own bindings come out of the same library too and must equal the checked-in ones
# (bindings/, ios/Sources), so an app uses those unchanged; this script fails otherwise.
#
# usage: crates/witan-net-ffi/generate.sh [OUT_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
die() { echo "witan-net-ffi/generate.sh: $*" >&2; exit 1; }

cd "$REPO"
cargo build --quiet --features bindgen --bin uniffi-bindgen || die "building uniffi-bindgen failed"
cargo build --quiet -p witan-net-ffi || die "building libwitan_net_ffi failed"
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
TARGET=${TARGET:-$REPO/target}
LIB=$TARGET/debug/libwitan_net_ffi.so
[ -f "$LIB" ] || die "$LIB not found"
DEST=${1:-$TARGET/witan-net-ffi/bindings}

OUT=$(mktemp -d "${TMPDIR:-/tmp}/witan-net-bindings.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
for lang in kotlin swift; do
  "$TARGET/debug/uniffi-bindgen" generate "$LIB" --language "$lang" --no-format \
    --out-dir "$OUT/all/$lang" >"$OUT/$lang.log" 2>&1 || { cat "$OUT/$lang.log" >&2; die "uniffi-bindgen failed for $lang"; }
done

# witan's part of the library must be exactly what the checked-in bindings expect.
diff -q "$OUT/all/kotlin/dev/witan/witan.kt" "$REPO/bindings/kotlin/dev/witan/witan.kt" >/dev/null \
  || die "witan's Kotlin bindings from libwitan_net_ffi differ from bindings/; run bindings/generate.sh"
# The one checked-in copy of witan's Swift lives in the Swift package (ios/Sources).
for pair in Witan.swift:Witan/Witan.swift WitanFFI.h:WitanFFI/WitanFFI.h \
  WitanFFI.modulemap:WitanFFI/module.modulemap; do
  f=${pair%%:*}
  diff -q "$OUT/all/swift/$f" "$REPO/ios/Sources/${pair#*:}" >/dev/null \
    || die "witan's $f from libwitan_net_ffi differs from ios/Sources; run bindings/generate.sh"
done

# Files are replaced only when their content changed, so the test scripts' caches stay valid.
put() { mkdir -p "$(dirname "$2")"; cmp -s "$1" "$2" || cp "$1" "$2"; }
put "$OUT/all/kotlin/dev/witan/net/witan_net.kt" "$DEST/kotlin/dev/witan/net/witan_net.kt"
for f in WitanNet.swift WitanNetFFI.h WitanNetFFI.modulemap; do
  put "$OUT/all/swift/$f" "$DEST/swift/$f"
done
echo "witan-net-ffi/generate.sh: wrote $DEST (kotlin/dev/witan/net/witan_net.kt, swift/WitanNet.swift, WitanNetFFI.h, WitanNetFFI.modulemap)"
