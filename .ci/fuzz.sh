#!/usr/bin/env bash
# .ci/fuzz.sh — builds the libFuzzer harnesses (fuzz/build.sh) and runs each for FUZZ_SECONDS
# (default 60) from its seed corpus in fuzz/corpus/<target>/. The three run at once, sharing the
# CI machine's cores (2: about 40 CPU-seconds each, where two harnesses had 60), so the wall time
# stays FUZZ_SECONDS. Fails on the first crash, sanitizer report, leak, timeout or out-of-memory;
# the reproducer is kept in $FUZZ_OUT/artifacts/ and its path printed. New inputs go to a scratch corpus under $FUZZ_OUT, never into the committed seeds.
# Reproduce a finding with: build-fuzz/<target> build-fuzz/artifacts/<file>
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
out=${FUZZ_OUT:-build-fuzz}
export FUZZ_OUT=$out

bash fuzz/build.sh
mkdir -p "$out/artifacts"
status=0
# The harnesses run side by side, each for the whole FUZZ_SECONDS.
fuzz_one() {
  local target=$1 scratch="$out/corpus-$1"
  mkdir -p "$scratch"
  "$out/${target}_fuzzer" "$scratch" "fuzz/corpus/$target" \
      -dict="fuzz/$target.dict" -max_total_time="$seconds" -max_len=8192 -timeout=10 \
      -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/$target-" 2> "$out/$target.log"
}
pids=()
targets=(idx checkpoint safetensors)
for target in "${targets[@]}"; do
  echo "== fuzzing $target for ${seconds}s"
  fuzz_one "$target" &
  pids+=($!)
done
i=0
for target in "${targets[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "!! $target fuzzer found a problem; last lines of $out/$target.log:"
    tail -n 60 "$out/$target.log"
    ls -l "$out/artifacts/" || true
    status=1
  else
    grep -E "stat::number_of_executed_runs|cov:" "$out/$target.log" | tail -n 3 || true
  fi
  i=$((i + 1))
done
exit $status
