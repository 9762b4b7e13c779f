#!/usr/bin/env bash
# test-swift.sh — runs the Swift package's tests (`swift test`, XCTest and Swift Testing) on
# Linux against the Rust library, inside the Swift chroot (scripts/swift-chroot.sh).
#
# The package is the repository's Package.swift (its generated sources are checked by
# bindings/generate.sh --check). Links the tests against target/<profile>/lib<name>.so with
# -L and an rpath, and keeps SwiftPM's build directory in the cargo target directory
# (target/witan-host-tests/swift/<package>/), so the package directory stays clean.
#
# Prints `swift: N passed, N failed` (from XCTest's `Executed N tests, with M failures` and
# Swift Testing's `Test run with N tests ...`) and exits non-zero when a test fails, none
# ran, or anything before that fails.
# Settings: scripts/lib/common.sh (WITAN_CRATE_DIR, WITAN_LIB_NAME, WITAN_SWIFT_PACKAGE,
# WITAN_PROFILE, WITAN_SKIP_BUILD); SWIFT_ROOT for the chroot.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=scripts/lib/common.sh
. "$HERE/lib/common.sh"

fail() { echo "test-swift: $*" >&2; echo "swift: 0 passed, 1 failed"; exit 1; }

[ -f "$WITAN_SWIFT_PACKAGE/Package.swift" ] || fail "no Package.swift in $WITAN_SWIFT_PACKAGE"
witan_build_lib || fail "the Rust library could not be built"

TARGET=$(witan_target_dir)
PKG=$(cd "$WITAN_SWIFT_PACKAGE" && pwd -P)
# One build directory per package: sharing one let SwiftPM run the tests of the package
# built last (witan-net-ffi's two) when asked for another's.
SCRATCH=$TARGET/witan-host-tests/swift/$(printf '%s' "$PKG" | sha256sum | cut -c1-16)
mkdir -p "$SCRATCH"
LOG=$SCRATCH/swift-test.log

set +e
# WITAN_SWIFT_TEST_ARGS is split into words on purpose (e.g. "--filter Foo").
# shellcheck disable=SC2086
(cd "$WITAN_REPO" && SWIFT_CHROOT_BINDS="$PKG:$TARGET${SWIFT_CHROOT_BINDS:+:$SWIFT_CHROOT_BINDS}" \
  "$HERE/swift-chroot.sh" swift test --package-path "$PKG" --scratch-path "$SCRATCH" \
    -Xlinker -L"$WITAN_LIB_DIR" -Xlinker -rpath -Xlinker "$WITAN_LIB_DIR" ${WITAN_SWIFT_TEST_ARGS:-}) 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e

# XCTest: the last `Executed N tests, with M failures` line is the overall one.
xc=$(grep -E 'Executed [0-9]+ tests?, with [0-9]+ failures?' "$LOG" | tail -n 1 || true)
xc_total=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$xc")
xc_failed=$(sed -E 's/.*with ([0-9]+) failures?.*/\1/' <<<"$xc")
# Swift Testing: `Test run with N tests passed|failed ...`, one `✘ Test x() failed` per failure.
st=$(grep -E 'Test run with [0-9]+ tests? (passed|failed)' "$LOG" | tail -n 1 || true)
st_total=$(sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' <<<"$st")
st_failed=0
if grep -q 'tests\? failed' <<<"$st"; then
  st_failed=$(grep -E '^✘ Test .* failed after' "$LOG" | grep -vc '^✘ Test run with' || true)
fi
total=$(( ${xc_total:-0} + ${st_total:-0} ))
failed=$(( ${xc_failed:-0} + ${st_failed:-0} ))
if [ -z "$xc" ] && [ -z "$st" ]; then
  echo "test-swift: no XCTest or Swift Testing summary in the output (exit $rc)" >&2
  echo "swift: 0 passed, 1 failed"
  exit 1
fi
echo "swift: $(( total - failed )) passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$total" -gt 0 ]
