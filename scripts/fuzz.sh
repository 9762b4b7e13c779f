#!/usr/bin/env bash
# fuzz.sh — runs every fuzz target of fuzz/ (cargo fuzz, libFuzzer) for a bounded time.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 60 s, every target)
#
# Installs cargo-fuzz if it is missing (needs a nightly toolchain: WITAN_FUZZ_TOOLCHAIN,
# default `nightly`), builds all targets once, then runs them one after the other (one
# libFuzzer process at a time) with -max_total_time. Each target's init writes a seed corpus
# built from valid messages into fuzz/corpus/<target>/ (WITAN_FUZZ_SEED_DIR); the corpus
# grows across runs. Crashes land in fuzz/artifacts/<target>/, full logs in
# fuzz/target/fuzz-logs/<target>.log. Prints per target: runs, time, result; exits 1 if any
# target crashed. Reproduce a crash with
#   cargo +nightly fuzz run --fuzz-dir fuzz <target> fuzz/artifacts/<target>/<file>
# See docs/fuzzing.md.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/.." && pwd -P)
FUZZ="$REPO/fuzz"
SECS=${1:-60}
shift || true
TOOLCHAIN=${WITAN_FUZZ_TOOLCHAIN:-nightly}

case "$SECS" in
'' | *[!0-9]*)
  echo "usage: scripts/fuzz.sh [seconds-per-target] [target...]" >&2
  exit 2
  ;;
esac

if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: toolchain '$TOOLCHAIN' missing (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked || exit 1
fi

# The fuzz crate is its own workspace; start its lock file from the main crate's so both
# build the same pinned dependency versions. Both files stay out of git.
if [ ! -f "$FUZZ/Cargo.lock" ] && [ -f "$REPO/Cargo.lock" ]; then
  cp "$REPO/Cargo.lock" "$FUZZ/Cargo.lock"
fi
export CARGO_TARGET_DIR="$FUZZ/target"
fuzz() { cargo "+$TOOLCHAIN" fuzz "$@"; }

if [ "$#" -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(fuzz list --fuzz-dir "$FUZZ")
fi

echo "==> building ${#TARGETS[@]} fuzz targets"
if [ "$#" -gt 0 ]; then
  # Only the targets named (cargo fuzz builds one, or all).
  for t in "${TARGETS[@]}"; do fuzz build --fuzz-dir "$FUZZ" "$t" || exit 1; done
else
  fuzz build --fuzz-dir "$FUZZ" || exit 1
fi

BIN="$FUZZ/target/$(rustc "+$TOOLCHAIN" -vV | sed -n 's/^host: //p')/release"
LOGS="$FUZZ/target/fuzz-logs"
mkdir -p "$LOGS"
SUMMARY=()
CRASHED=0
for t in "${TARGETS[@]}"; do
  corpus="$FUZZ/corpus/$t"
  mkdir -p "$corpus" "$FUZZ/artifacts/$t"
  log="$LOGS/$t.log"
  echo "==> $t for ${SECS} s"
  start=$(date +%s)
  # The binary built above, run directly: every target tests the same build even if the
  # sources change meanwhile (`cargo fuzz run` would rebuild).
  WITAN_FUZZ_SEED_DIR="$corpus" ASAN_OPTIONS="detect_odr_violation=0" "$BIN/$t" \
    -artifact_prefix="$FUZZ/artifacts/$t/" -max_total_time="$SECS" -timeout=30 \
    -rss_limit_mb=4096 -print_final_stats=1 "$corpus" >"$log" 2>&1
  rc=$?
  wall=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  if [ -z "$runs" ]; then
    runs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -1)
  fi
  fuzz_secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  if [ "$rc" -eq 0 ]; then
    result="ok, no crash"
  else
    CRASHED=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    result="CRASH (exit $rc) ${artifact:-see $log}"
  fi
  line=$(printf '%-26s runs=%-10s fuzz_time=%-5s wall=%-5s %s' \
    "$t" "${runs:-?}" "${fuzz_secs:-?}s" "${wall}s" "$result")
  echo "$line"
  SUMMARY+=("$line")
done

echo "==> summary (${SECS} s per target; logs in $LOGS)"
printf '%s\n' "${SUMMARY[@]}"
exit "$CRASHED"
