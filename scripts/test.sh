#!/usr/bin/env bash
# Installs what is needed, builds vdistream twice (optimised, and with AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs the whole test suite on both, then builds the libFuzzer
# harnesses (clang) and runs each for a bounded time (VDISTREAM_FUZZ_SECONDS, 30 by default).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

jobs=$(nproc)
run_suite() {  # build-dir, extra cmake args...
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVDISTREAM_WERROR=ON "$@"
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs"
}

echo "== tests: optimised build (build/) =="
run_suite build
echo "== tests: AddressSanitizer + UBSan build (build-asan/) =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -DVDISTREAM_SANITIZE=ON
echo "== fuzzers: libFuzzer + ASan + UBSan (clang, build-fuzz/), ${VDISTREAM_FUZZ_SECONDS:-30} s each =="
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVDISTREAM_WERROR=ON \
  -DVDISTREAM_FUZZ=ON -DVDISTREAM_FUZZ_SECONDS="${VDISTREAM_FUZZ_SECONDS:-30}"
cmake --build build-fuzz -j "$jobs" --target fuzzers
ctest --test-dir build-fuzz --output-on-failure -j "$jobs"
