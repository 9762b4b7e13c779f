#!/usr/bin/env bash
# test-r8.sh — shrinks the Kotlin bindings and the JVM host tests with R8 the way an Android
# app's release build does, with only witan's consumer rules, and runs the shrunk tests on the
# JVM against the real library.
#
# An app that minifies gets android/consumer-rules.pro from the AAR and nothing else from
# witan; if those rules miss something JNA or UniFFI find by reflection, the app crashes on
# its first call into witan. So the "app" here is the compiled bindings and host tests
# (scripts/lib/kotlin.sh) together with JNA 5.17.0 (the version android/build.gradle.kts
# ships), kotlinx-coroutines, kotlin-stdlib and kotlin-test, shrunk by R8 in full mode (R8's
# and AGP 8's default) with only two rule files:
#   - android/consumer-rules.pro (witan's rules, as shipped in the AAR),
#   - android/host-tests/r8/entry-points.pro (the tests as the app's entry points; it keeps
#     no attributes).
# (A real app would also get the rules kotlinx-coroutines ships in its jar; they concern only
# the coroutines classes, and leaving them out makes the check stricter.)
# R8 and JNA come from Maven Central through `mvn dependency:get` into $WITAN_CACHE/m2
# (fetched once). The shrunk jar is cached in the cargo target directory, keyed by a hash of
# every input. The tests run through android/host-tests/r8/ShrunkTestRunner.java, which finds
# them in the unshrunk jar (JUnit would need the annotations R8 may strip) and calls them on
# the shrunk classes.
#
# Prints `r8: N passed, N failed` and exits non-zero when a test fails, none ran, or anything
# before that fails. JVM bytecode stands in for DEX here: what R8 keeps or strips is decided
# before DEX is written, but ART itself is not run (no ART runs on this machine).
# Settings: scripts/lib/common.sh; R8_VERSION (default 8.7.18, of the 8.7 line that AGP 8.7 uses),
# JNA_VERSION (default 5.17.0), WITAN_R8_RULES (default android/consumer-rules.pro).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=scripts/lib/common.sh
. "$HERE/lib/common.sh"
# shellcheck source=scripts/lib/kotlin.sh
. "$HERE/lib/kotlin.sh"

fail() { echo "test-r8: $*" >&2; echo "r8: 0 passed, 1 failed"; exit 1; }

R8_VERSION=${R8_VERSION:-8.7.18}
JNA_VERSION=${JNA_VERSION:-5.17.0}
RULES=${WITAN_R8_RULES:-$WITAN_REPO/android/consumer-rules.pro}
ENTRY=$WITAN_REPO/android/host-tests/r8/entry-points.pro
RUNNER_SRC=$WITAN_REPO/android/host-tests/r8/ShrunkTestRunner.java
M2=$WITAN_CACHE/m2
[ -f "$RULES" ] || fail "no consumer rules at $RULES"

# One artifact from Maven Central into $M2, unless it is there already; prints the jar's path.
maven_jar() { # group artifact version
  local jar=$M2/${1//.//}/$2/$3/$2-$3.jar
  if [ ! -f "$jar" ]; then
    command -v mvn >/dev/null || { echo "mvn is missing; run scripts/setup-toolchains.sh" >&2; return 1; }
    echo "test-r8: fetching $1:$2:$3 with mvn into $M2" >&2
    mvn -B -q -Dmaven.repo.local="$M2" dependency:get -Dartifact="$1:$2:$3" -Dtransitive=false >&2 \
      || { echo "mvn dependency:get $1:$2:$3 failed" >&2; return 1; }
    [ -f "$jar" ] || { echo "mvn finished but $jar is missing" >&2; return 1; }
  fi
  echo "$jar"
}

R8_JAR=$(maven_jar com.android.tools r8 "$R8_VERSION") || fail "R8 $R8_VERSION could not be fetched"
JNA_JAR=$(maven_jar net.java.dev.jna jna "$JNA_VERSION") || fail "JNA $JNA_VERSION could not be fetched"

witan_build_lib || fail "the Rust library could not be built"
witan_kotlin_jars || fail "the Kotlin jars could not be built"

J=/usr/share/java
KL=$KOTLIN_HOME/lib
# What an app's release build hands R8: its code (here the tests), witan's bindings and their
# runtime dependencies (annotations-13.0 is kotlin-stdlib's own dependency).
PROGRAM=("$BINDINGS_JAR" "$TESTS_JAR" "$JNA_JAR" "$KL/kotlinx-coroutines-core-jvm.jar" "$KL/kotlin-stdlib.jar"
  "$KL/annotations-13.0.jar" "$KL/kotlin-test.jar" "$KL/kotlin-test-junit5.jar")
# JUnit's API stays outside the app: it is the test framework, present at run time.
FRAMEWORK=("$J/junit-jupiter-api.jar" "$J/apiguardian-api.jar" "$J/opentest4j.jar")
for f in "${PROGRAM[@]}" "${FRAMEWORK[@]}"; do [ -f "$f" ] || fail "$f missing"; done

WORK=$(witan_target_dir)/witan-host-tests/r8
mkdir -p "$WORK"

KEY=$(witan_hash_files "${PROGRAM[@]}" "${FRAMEWORK[@]}" "$RULES" "$ENTRY" "$R8_JAR")
SHRUNK=$WORK/shrunk-$KEY.jar
if [ ! -f "$SHRUNK" ]; then
  echo "test-r8: shrinking with R8 $R8_VERSION (full mode) and $(basename "$RULES")"
  find "$WORK" -maxdepth 1 -name 'shrunk-*.jar' -delete
  R8_ARGS=(--classfile --release --output "$SHRUNK.tmp.jar" --lib "${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}")
  for f in "${FRAMEWORK[@]}"; do R8_ARGS+=(--lib "$f"); done
  R8_ARGS+=(--pg-conf "$RULES" --pg-conf "$ENTRY")
  start=$(date +%s)
  if ! java -Xmx2g -cp "$R8_JAR" com.android.tools.r8.R8 "${R8_ARGS[@]}" "${PROGRAM[@]}" >"$WORK/r8.log" 2>&1; then
    cat "$WORK/r8.log" >&2
    rm -f "$SHRUNK.tmp.jar"
    fail "R8 failed"
  fi
  mv "$SHRUNK.tmp.jar" "$SHRUNK"
  echo "test-r8: shrunk in $(( $(date +%s) - start )) s: $(du -k "$SHRUNK" | cut -f1) KiB from $(cat "${PROGRAM[@]}" | wc -c | awk '{printf "%d", $1/1024}') KiB"
fi

RUNNER=$WORK/runner
if [ ! -f "$RUNNER/ShrunkTestRunner.class" ] || [ "$RUNNER_SRC" -nt "$RUNNER/ShrunkTestRunner.class" ]; then
  rm -rf "$RUNNER" && mkdir -p "$RUNNER"
  javac -d "$RUNNER" "$RUNNER_SRC" || fail "compiling ShrunkTestRunner failed"
fi

FRAMEWORK_CP=$(IFS=:; echo "${FRAMEWORK[*]}")
java -Djna.library.path="$WITAN_LIB_DIR" -cp "$RUNNER:$SHRUNK:$FRAMEWORK_CP" ShrunkTestRunner \
  "$TESTS_JAR" "$BINDINGS_JAR:$KOTLIN_RT:$KOTLIN_TEST_API"
