#!/usr/bin/env bash
# Runs one libFuzzer harness for a bounded time: first every committed input of its corpus (seeds
# and past findings, read-only), then new inputs, kept in WORK (under the build directory).
# Fails (non-zero) on a crash, a leak, a sanitizer report, an abort or a hang; the input that did
# it is saved in WORK/ as crash-*, leak-* or timeout-*, to be committed to the corpus once fixed.
# usage: run_fuzzer.sh FUZZER CORPUS_DIR WORK_DIR SECONDS
set -euo pipefail
fuzzer=$1 corpus=$2 work=$3 seconds=$4
mkdir -p "$work/new"
# -timeout: one input taking longer is a hang. -rss_limit_mb: a run growing past it is a finding.
# -max_len: inputs up to 64 KiB (the parsers' own limits are tested past in the unit tests).
exec "$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/new" "$corpus"
