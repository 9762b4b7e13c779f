#!/usr/bin/env bash
# generate.sh — generates the Kotlin and Swift bindings of witan-net from the one native
# library that holds witan and witan-net (libwitan_net_ffi), with UniFFI in library mode.
#
# Output, at stable paths (names from crates/witan-net/uniffi.toml):
#   crates/witan-net-ffi/bindings/kotlin/dev/witan/net/witan_net.kt   (package dev.witan.net)
#   crates/witan-net-ffi/bindings/swift/WitanNet.swift, WitanNetFFI.h, WitanNetFFI.modulemap
# witan's own bindings are generated from the same library too and must equal the
# checked-in ones (bindings/), so an app uses those unchanged.
#
# usage: crates/witan-net-ffi/generate.sh [--check]
#   --check   regenerate into a temporary directory and fail on any difference.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1
die() { echo "witan-net-ffi/generate.sh: $*" >&2; exit 1; }

cd "$REPO"
cargo build --quiet --features bindgen --bin uniffi-bindgen || die "building uniffi-bindgen failed"
cargo build --quiet -p witan-net-ffi || die "building libwitan_net_ffi failed"
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
LIB=${TARGET:-$REPO/target}/debug/libwitan_net_ffi.so
[ -f "$LIB" ] || die "$LIB not found"

OUT=$(mktemp -d "${TMPDIR:-/tmp}/witan-net-bindings.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
for lang in kotlin swift; do
  "${TARGET:-$REPO/target}/debug/uniffi-bindgen" generate "$LIB" --language "$lang" --no-format \
    --out-dir "$OUT/all/$lang" >"$OUT/$lang.log" 2>&1 || { cat "$OUT/$lang.log" >&2; die "uniffi-bindgen failed for $lang"; }
done
mkdir -p "$OUT/net/kotlin/dev/witan/net" "$OUT/net/swift"
cp "$OUT/all/kotlin/dev/witan/net/witan_net.kt" "$OUT/net/kotlin/dev/witan/net/"
cp "$OUT"/all/swift/WitanNet* "$OUT/net/swift/"

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

if [ "$CHECK" = 1 ]; then
  diff -ru "$HERE/bindings" "$OUT/net" >&2 || die "bindings differ from the library; run $0"
  echo "witan-net-ffi/generate.sh: bindings are up to date"
  exit 0
fi
rm -rf "$HERE/bindings"
cp -R "$OUT/net" "$HERE/bindings"
echo "witan-net-ffi/generate.sh: wrote $(cd "$HERE" && find bindings -type f | sort | tr '\n' ' ')"
