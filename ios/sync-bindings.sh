#!/usr/bin/env bash
# sync-bindings.sh — copies the generated Swift bindings into the Swift package layout.
#
#   <swift dir>/<Module>.swift          -> <package>/Sources/<Module>/<Module>.swift
#   <swift dir>/<FFI>.h                 -> <package>/Sources/<FFI>/<FFI>.h
#   <swift dir>/<FFI>.modulemap         -> <package>/Sources/<FFI>/module.modulemap
# Module names are read off the generated file names (Witan / WitanFFI for witan).
#
# usage: ios/sync-bindings.sh [--check] [SWIFT_BINDINGS_DIR [PACKAGE_DIR]]
#   defaults: bindings/swift and ios/ of this repository. --check only compares.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
CHECK=0
[ "${1:-}" = "--check" ] && { CHECK=1; shift; }
SRC=${1:-$HERE/../bindings/swift}
PKG=${2:-$HERE}

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
  "$SRC/$MODULE.swift:$PKG/Sources/$MODULE/$MODULE.swift"
  "$SRC/$FFI.h:$PKG/Sources/$FFI/$FFI.h"
  "$SRC/$FFI.modulemap:$PKG/Sources/$FFI/module.modulemap"
)
status=0
for p in "${pairs[@]}"; do
  from=${p%%:*}; to=${p#*:}
  if [ "$CHECK" = 1 ]; then
    cmp -s "$from" "$to" || { echo "sync-bindings.sh: ${to#"$PKG"/} differs from the generated bindings" >&2; status=1; }
  else
    mkdir -p "$(dirname "$to")"
    cmp -s "$from" "$to" || cp "$from" "$to"
  fi
done
exit $status
