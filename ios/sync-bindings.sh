#!/usr/bin/env bash
# sync-bindings.sh — places uniffi-bindgen's Swift output in the Swift package's layout, the
# only copy of the generated Swift that is checked in (bindings/generate.sh calls it).
#
#   <swift dir>/<Module>.swift          -> <sources>/<Module>/<Module>.swift
#   <swift dir>/<FFI>.h                 -> <sources>/<FFI>/<FFI>.h
#   <swift dir>/<FFI>.modulemap         -> <sources>/<FFI>/module.modulemap
# Module names are read off the generated file names (Witan / WitanFFI for witan). Other
# files in <sources> (the privacy manifest) are left alone.
#
# usage: ios/sync-bindings.sh [--check] SWIFT_BINDINGS_DIR [SOURCES_DIR]
#   default SOURCES_DIR: ios/Sources of this repository. --check only compares.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CHECK=0
[ "${1:-}" = "--check" ] && { CHECK=1; shift; }
SRC=${1:?usage: sync-bindings.sh [--check] SWIFT_BINDINGS_DIR [SOURCES_DIR]}
DEST=${2:-$HERE/Sources}

die() { echo "sync-bindings.sh: $*" >&2; exit 1; }
shopt -s nullglob
maps=("$SRC"/*.modulemap)
swifts=("$SRC"/*.swift)
[ ${#maps[@]} -eq 1 ] || die "expected one .modulemap in $SRC, found ${#maps[@]}"
[ ${#swifts[@]} -eq 1 ] || die "expected one .swift in $SRC, found ${#swifts[@]}"
FFI=$(basename "${maps[0]}" .modulemap)
MODULE=$(basename "${swifts[0]}" .swift)
[ -f "$SRC/$FFI.h" ] || die "missing $SRC/$FFI.h"

pairs=(
  "$SRC/$MODULE.swift:$DEST/$MODULE/$MODULE.swift"
  "$SRC/$FFI.h:$DEST/$FFI/$FFI.h"
  "$SRC/$FFI.modulemap:$DEST/$FFI/module.modulemap"
)
status=0
for p in "${pairs[@]}"; do
  from=${p%%:*}; to=${p#*:}
  if [ "$CHECK" = 1 ]; then
    cmp -s "$from" "$to" || { echo "sync-bindings.sh: ${to#"$DEST"/} differs from the generated bindings" >&2; status=1; }
  else
    mkdir -p "$(dirname "$to")"
    cmp -s "$from" "$to" || cp "$from" "$to"
  fi
done
exit $status
