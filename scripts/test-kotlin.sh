#!/usr/bin/env bash
# test-kotlin.sh — compiles the generated Kotlin bindings and the JVM host tests with kotlinc
# and runs them with the JUnit 5 console launcher against the Rust library.
#
# Toolchain (scripts/setup-toolchains.sh): kotlinc from $WITAN_CACHE/kotlinc, whose lib/
# provides kotlin-stdlib, kotlin-test(-junit5) and kotlinx-coroutines-core-jvm 1.8.0; JNA and
# JUnit 5 from Debian (/usr/share/java). The jars are compiled and cached by
# scripts/lib/kotlin.sh. The library is found through -Djna.library.path=target/<profile>.
#
# Prints `kotlin: N passed, N failed` (from the launcher's summary) and exits non-zero when
# a test fails, none ran, or anything before that fails.
# Settings: scripts/lib/common.sh (WITAN_CRATE_DIR, WITAN_LIB_NAME, WITAN_BINDINGS_DIR,
# WITAN_KOTLIN_TESTS, WITAN_PROFILE, WITAN_SKIP_BUILD).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=scripts/lib/common.sh
. "$HERE/lib/common.sh"

fail() { echo "test-kotlin: $*" >&2; echo "kotlin: 0 passed, 1 failed"; exit 1; }

# shellcheck source=scripts/lib/kotlin.sh
. "$HERE/lib/kotlin.sh"

witan_build_lib || fail "the Rust library could not be built"
witan_kotlin_jars || fail "the Kotlin jars could not be built"
J=/usr/share/java

LOG=$KOTLIN_CACHE/junit.log
set +e
# WITAN_JAVA_OPTS is split into words on purpose.
# shellcheck disable=SC2086
java -Djna.library.path="$WITAN_LIB_DIR" ${WITAN_JAVA_OPTS:-} \
  -jar "$J/junit-platform-console-standalone.jar" \
  --disable-banner --disable-ansi-colors --details=tree --fail-if-no-tests \
  -cp "$TESTS_JAR:$BINDINGS_JAR:$KOTLIN_RT" --scan-classpath "$TESTS_JAR" 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e

# Summary lines look like `[         3 tests successful      ]`.
count() { sed -n "s/^\[ *\([0-9][0-9]*\) tests $1 *\].*/\1/p" "$LOG" | tail -n 1; }
passed=$(count successful)
failed=$(count failed)
skipped_n=$(count skipped)
aborted_n=$(count aborted)
skipped=$(( ${skipped_n:-0} + ${aborted_n:-0} ))
if [ -z "$passed" ] || [ -z "$failed" ]; then
  echo "test-kotlin: no JUnit summary in the launcher's output (exit $rc)" >&2
  echo "kotlin: ${passed:-0} passed, ${failed:-1} failed"
  exit 1
fi
if [ "$skipped" -gt 0 ]; then
  echo "kotlin: $passed passed, $failed failed, $skipped skipped"
else
  echo "kotlin: $passed passed, $failed failed"
fi
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
