#!/usr/bin/env bash
# test-kotlin.sh — compiles the generated Kotlin bindings and the JVM host tests with kotlinc
# and runs them with the JUnit 5 console launcher against the Rust library.
#
# Toolchain (scripts/setup-toolchains.sh): kotlinc from $WITAN_CACHE/kotlinc, whose lib/
# provides kotlin-stdlib, kotlin-test(-junit5) and kotlinx-coroutines-core-jvm 1.8.0; JNA and
# JUnit 5 from Debian (/usr/share/java). The compiled bindings jar is cached in the cargo
# target directory, keyed by a hash of the generated .kt files (compiling them is the slow
# part); the tests jar is keyed by the tests and that hash. The library is found through
# -Djna.library.path=target/<profile>.
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

J=/usr/share/java
KOTLINC=$KOTLIN_HOME/bin/kotlinc
[ -x "$KOTLINC" ] || fail "kotlinc not found at $KOTLINC; run scripts/setup-toolchains.sh"
for f in "$J/jna.jar" "$J/junit-platform-console-standalone.jar" "$J/junit-jupiter-api.jar"; do
  [ -f "$f" ] || fail "$f missing; run scripts/setup-toolchains.sh"
done

witan_build_lib || fail "the Rust library could not be built"

mapfile -t BINDINGS_KT < <(find "$WITAN_BINDINGS_DIR/kotlin" -name '*.kt' 2>/dev/null | LC_ALL=C sort)
[ ${#BINDINGS_KT[@]} -gt 0 ] || fail "no generated Kotlin in $WITAN_BINDINGS_DIR/kotlin; run bindings/generate.sh"
mapfile -t TESTS_KT < <(find "$WITAN_KOTLIN_TESTS" -name '*.kt' 2>/dev/null | LC_ALL=C sort)
[ ${#TESTS_KT[@]} -gt 0 ] || fail "no Kotlin tests in $WITAN_KOTLIN_TESTS"

KL=$KOTLIN_HOME/lib
RT=$J/jna.jar:$KL/kotlinx-coroutines-core-jvm.jar:$KL/kotlin-stdlib.jar:$KL/kotlin-test.jar:$KL/kotlin-test-junit5.jar
TEST_API=$J/junit-jupiter-api.jar:$J/apiguardian-api.jar:$J/opentest4j.jar

CACHE=$(witan_target_dir)/witan-host-tests/kotlin
mkdir -p "$CACHE"
KVER=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$KOTLIN_HOME/package.json" | head -n 1)
BHASH=$(witan_hash_files "${BINDINGS_KT[@]}")-$KVER
THASH=$(witan_hash_files "${TESTS_KT[@]}")-$BHASH
BJAR=$CACHE/bindings-$BHASH.jar
TJAR=$CACHE/tests-$THASH.jar

# kotlinc writes to a temporary jar that is renamed only on success, so a killed or failed
# compile never leaves a jar that looks valid.
compile() { # out.jar classpath files...
  local out=$1 cp=$2 tmp
  shift 2
  tmp=$out.tmp.$$.jar
  if ! "$KOTLINC" -nowarn -cp "$cp" -d "$tmp" "$@" >"$CACHE/kotlinc.log" 2>&1; then
    cat "$CACHE/kotlinc.log" >&2
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$out"
}

if [ ! -f "$BJAR" ]; then
  echo "test-kotlin: compiling the bindings (${#BINDINGS_KT[@]} file(s))"
  find "$CACHE" -maxdepth 1 -name 'bindings-*.jar' -delete
  compile "$BJAR" "$RT" "${BINDINGS_KT[@]}" || fail "compiling the generated bindings failed"
fi
if [ ! -f "$TJAR" ]; then
  echo "test-kotlin: compiling the tests (${#TESTS_KT[@]} file(s))"
  find "$CACHE" -maxdepth 1 -name 'tests-*.jar' -delete
  compile "$TJAR" "$BJAR:$RT:$TEST_API" "${TESTS_KT[@]}" || fail "compiling the tests failed"
fi

LOG=$CACHE/junit.log
set +e
# WITAN_JAVA_OPTS is split into words on purpose.
# shellcheck disable=SC2086
java -Djna.library.path="$WITAN_LIB_DIR" ${WITAN_JAVA_OPTS:-} \
  -jar "$J/junit-platform-console-standalone.jar" \
  --disable-banner --disable-ansi-colors --details=tree --fail-if-no-tests \
  -cp "$TJAR:$BJAR:$RT" --scan-classpath "$TJAR" 2>&1 | tee "$LOG"
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
