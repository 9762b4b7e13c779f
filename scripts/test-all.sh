#!/usr/bin/env bash
# test-all.sh — every check of the witan repository, in order, stopping at the first failure:
#   1. scripts/setup-toolchains.sh          (idempotent; fast when everything is installed)
#   2. cargo fmt --all --check
#   3. cargo clippy --workspace --all-targets -- -D warnings
#   4. cargo test --workspace               (all Rust tests, witan-net's multi-process test too)
#   5. cargo test --workspace, caches off   (WITAN_CACHE_OFF=all: no cache may change a result)
#   6. bindings/generate.sh --check         (checked-in bindings match the code)
#   7. scripts/test-kotlin.sh               (Kotlin bindings on the JVM)
#   8. scripts/test-r8.sh                   (the same tests shrunk by R8 with the consumer rules)
#   9. scripts/test-swift.sh                (Swift bindings on Linux)
#  10. scripts/test-cross.sh                (cargo check for Android and iOS; aarch64 cross
#                                            build, 16 KiB alignment, smoke test under qemu)
#  11. crates/witan-net-ffi/test.sh         (witan-net's bindings, Kotlin and Swift)
# .ci/run calls this. Each step's time is printed; on failure the step is named and the
# script exits with its code. Settings for steps 6-11: scripts/lib/common.sh.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/.." && pwd -P)
# The cargo steps run in the crate (the repository root unless WITAN_CRATE_DIR says otherwise).
cd "${WITAN_CRATE_DIR:-$REPO}" || exit 1

TOTAL_START=$(date +%s)
# Every step's output is also kept here, to add up the test counts at the end.
SUMMARY_LOG=$(mktemp)
trap 'rm -f "$SUMMARY_LOG"' EXIT
step() { # name command...
  local name=$1 start rc
  shift
  echo "==> $name"
  start=$(date +%s)
  "$@" 2>&1 | tee -a "$SUMMARY_LOG"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "==> FAILED: $name (exit $rc, after $(( $(date +%s) - start )) s)" >&2
    echo "test-all: stopped at the first failure: $name" >&2
    exit "$rc"
  fi
  echo "==> ok: $name ($(( $(date +%s) - start )) s)"
}

step "toolchains (scripts/setup-toolchains.sh)" "$HERE/setup-toolchains.sh"
step "cargo fmt --all --check" cargo fmt --all --check
step "cargo clippy --workspace --all-targets -- -D warnings" cargo clippy --workspace --all-targets -- -D warnings
step "cargo test --workspace" cargo test --workspace
# The same tests and binaries again with every cache layer switched off (mls::Layer).
step "cargo test --workspace with every cache off (WITAN_CACHE_OFF=all)" env WITAN_CACHE_OFF=all cargo test --workspace
step "bindings up to date (bindings/generate.sh --check)" "$REPO/bindings/generate.sh" --check
# generate.sh has just built the library; the test scripts need not build it again.
export WITAN_SKIP_BUILD=1
step "Kotlin bindings on the JVM (scripts/test-kotlin.sh)" "$HERE/test-kotlin.sh"
step "Kotlin bindings shrunk by R8 (scripts/test-r8.sh)" "$HERE/test-r8.sh"
step "Swift bindings on Linux (scripts/test-swift.sh)" "$HERE/test-swift.sh"
step "cross checks for Android, iOS and aarch64 (scripts/test-cross.sh)" "$HERE/test-cross.sh"
unset WITAN_SKIP_BUILD
step "witan-net bindings, Kotlin and Swift (crates/witan-net-ffi/test.sh)" "$REPO/crates/witan-net-ffi/test.sh"
echo "test-all: every check passed in $(( $(date +%s) - TOTAL_START )) s"
# One closing line over Rust, Kotlin and Swift.
rust_passed=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed.*/\1/p' "$SUMMARY_LOG" | awk '{s+=$1} END {print s+0}')
rust_failed=$(sed -n 's/^test result: .* \([0-9]*\) failed.*/\1/p' "$SUMMARY_LOG" | awk '{s+=$1} END {print s+0}')
lang_passed=$(sed -n 's/^\(kotlin\|r8\|swift\): \([0-9]*\) passed.*/\2/p' "$SUMMARY_LOG" | awk '{s+=$1} END {print s+0}')
lang_failed=$(sed -n 's/^\(kotlin\|r8\|swift\): [0-9]* passed, \([0-9]*\) failed.*/\2/p' "$SUMMARY_LOG" | awk '{s+=$1} END {print s+0}')
echo "all: $(( ${rust_passed:-0} + ${lang_passed:-0} )) passed, $(( ${rust_failed:-0} + ${lang_failed:-0} )) failed"
