# shellcheck shell=bash
# kotlin.sh — compiles the generated Kotlin bindings and the JVM host tests into jars (sourced
# after common.sh by scripts/test-kotlin.sh and scripts/test-r8.sh).
#
# witan_kotlin_jars sets
#   KOTLIN_RT       the runtime classpath of the bindings: JNA (Debian), and from kotlinc's lib/
#                   kotlinx-coroutines-core-jvm, kotlin-stdlib, kotlin-test(-junit5)
#   KOTLIN_TEST_API JUnit 5's API jars (Debian) the tests compile against
#   KOTLIN_CACHE    target/witan-host-tests/kotlin
#   BINDINGS_JAR    the compiled bindings, keyed by a hash of the generated .kt files and the
#                   kotlinc version (compiling them is the slow part)
#   TESTS_JAR       the compiled host tests, keyed by the tests and the bindings' key
# and compiles what is missing. It returns non-zero with a message on stderr on failure.

witan_kotlin_jars() {
  local j=/usr/share/java kl=$KOTLIN_HOME/lib kotlinc=$KOTLIN_HOME/bin/kotlinc f kver bhash thash
  [ -x "$kotlinc" ] || { echo "kotlinc not found at $kotlinc; run scripts/setup-toolchains.sh" >&2; return 1; }
  for f in "$j/jna.jar" "$j/junit-platform-console-standalone.jar" "$j/junit-jupiter-api.jar"; do
    [ -f "$f" ] || { echo "$f missing; run scripts/setup-toolchains.sh" >&2; return 1; }
  done
  local -a bindings_kt tests_kt
  mapfile -t bindings_kt < <(find "$WITAN_BINDINGS_DIR/kotlin" -name '*.kt' 2>/dev/null | LC_ALL=C sort)
  [ ${#bindings_kt[@]} -gt 0 ] \
    || { echo "no generated Kotlin in $WITAN_BINDINGS_DIR/kotlin; run bindings/generate.sh" >&2; return 1; }
  mapfile -t tests_kt < <(find "$WITAN_KOTLIN_TESTS" -name '*.kt' 2>/dev/null | LC_ALL=C sort)
  [ ${#tests_kt[@]} -gt 0 ] || { echo "no Kotlin tests in $WITAN_KOTLIN_TESTS" >&2; return 1; }

  KOTLIN_RT=$j/jna.jar:$kl/kotlinx-coroutines-core-jvm.jar:$kl/kotlin-stdlib.jar:$kl/kotlin-test.jar:$kl/kotlin-test-junit5.jar
  KOTLIN_TEST_API=$j/junit-jupiter-api.jar:$j/apiguardian-api.jar:$j/opentest4j.jar
  KOTLIN_CACHE=$(witan_target_dir)/witan-host-tests/kotlin
  mkdir -p "$KOTLIN_CACHE"
  kver=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$KOTLIN_HOME/package.json" | head -n 1)
  bhash=$(witan_hash_files "${bindings_kt[@]}")-$kver
  thash=$(witan_hash_files "${tests_kt[@]}")-$bhash
  BINDINGS_JAR=$KOTLIN_CACHE/bindings-$bhash.jar
  TESTS_JAR=$KOTLIN_CACHE/tests-$thash.jar

  if [ ! -f "$BINDINGS_JAR" ]; then
    echo "$(basename "$0"): compiling the bindings (${#bindings_kt[@]} file(s))"
    find "$KOTLIN_CACHE" -maxdepth 1 -name 'bindings-*.jar' -delete
    witan_kotlinc "$BINDINGS_JAR" "$KOTLIN_RT" "${bindings_kt[@]}" \
      || { echo "compiling the generated bindings failed" >&2; return 1; }
  fi
  if [ ! -f "$TESTS_JAR" ]; then
    echo "$(basename "$0"): compiling the tests (${#tests_kt[@]} file(s))"
    find "$KOTLIN_CACHE" -maxdepth 1 -name 'tests-*.jar' -delete
    witan_kotlinc "$TESTS_JAR" "$BINDINGS_JAR:$KOTLIN_RT:$KOTLIN_TEST_API" "${tests_kt[@]}" \
      || { echo "compiling the tests failed" >&2; return 1; }
  fi
}

# kotlinc writes to a temporary jar that is renamed only on success, so a killed or failed
# compile never leaves a jar that looks valid.
witan_kotlinc() { # out.jar classpath files...
  local out=$1 cp=$2 tmp
  shift 2
  tmp=$out.tmp.$$.jar
  if ! "$KOTLIN_HOME/bin/kotlinc" -nowarn -cp "$cp" -d "$tmp" "$@" >"$KOTLIN_CACHE/kotlinc.log" 2>&1; then
    cat "$KOTLIN_CACHE/kotlinc.log" >&2
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$out"
}
