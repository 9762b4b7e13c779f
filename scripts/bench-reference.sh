#!/usr/bin/env bash
# bench-reference.sh — measures the reference implementation (de-mls 4.1.0) on the chat
# workload of witan's bench: µs per receive, one packet per process_inbound call, in memory.
#
#   scripts/bench-reference.sh [--ns 16,64,128] [--rounds 20] [--json PATH]
#
# Builds bench-reference/ (its own Cargo project and workspace, release profile with LTO)
# and runs it with the given arguments. It prints per group size the receives and the wall
# and CPU µs per receive, then one JSON line; --json PATH also writes that JSON object to
# PATH. Exits non-zero if any message was not delivered. de-mls's build script needs
# `protoc` (Debian: protobuf-compiler). See bench-reference/src/main.rs.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/.." && pwd -P)
MANIFEST="$REPO/bench-reference/Cargo.toml"
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/bench-reference/target}

if ! command -v protoc >/dev/null 2>&1; then
    echo "bench-reference: protoc is missing (apt-get install -y protobuf-compiler)" >&2
    exit 2
fi

# Not cd'ing keeps a relative --json PATH relative to the caller's directory.
cargo build --release --manifest-path "$MANIFEST"
exec "$TARGET_DIR/release/witan-bench-reference" "$@"
