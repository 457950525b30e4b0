#!/usr/bin/env bash
# tests/emu/run.sh — runs the GPU tests on the CPU, for machines without a GPU: the real kernels of
# cuda/*.cu (rewritten by transform.py), the real CUDA host code (cuda/*.cpp: the functional API's
# CUDA path, the CUDA training engine) and the real tests, against the emulated CUDA runtime and
# cuBLAS of tests/emu (runtime.cpp, cublas.cpp), with its checker (out-of-bounds and uninitialized accesses,
# shared-memory races, global write conflicts, block-order dependence, barrier divergence, capture
# violations, a kernel's first launch inside a capture, launches beyond the block, grid and
# __launch_bounds__ limits; see device.cpp). Every CUDA thread is a fiber; blocks run in a shuffled order.
#
# What it cannot check: timing, coalescing, occupancy, anything about nvcc's code generation or the
# real cuBLAS — tools/gpu-check.sh on a GPU does that.
#
# Usage: tests/emu/run.sh [gtest filter]   default: every GPU test ('Cuda*:*Gpu*', less the tests
# of what happens without a GPU, '*WithoutAGpu*', '*WithoutGpu*'), run in two
# shards in parallel; the run fails if a selected test skips or the checker reports anything.
# Two rounding modes, in one build folder (build-emu; EMU_BUILD_DIR overrides): only the kernels are
# compiled twice, each mode has its test binary (tests/emu/CMakeLists.txt):
#   default      the kernels compiled without FMA: every product and sum rounded on its own
#                (emu_tests);
#   EMU_FMA=1    the kernels compiled as nvcc compiles them (--fmad=true): a * b + c contracted into
#                fused multiply-adds (g++ -mfma -ffp-contract=fast; the CPU must have FMA)
#                (emu_tests_fma).
# EMU_BLOCK_ORDER=forward|reverse|shuffle; EMU_SHARDS (default: the number of cores) is the number of
# shards.
# EMU_LAUNCH_LOG (default: a fresh launches.log in the build folder; set it to append elsewhere)
# receives every kernel's launch records (threads per block, dynamic shared memory, opt-in,
# largest grid), which tools/check-kernels.sh joins with ptxas's registers and shared memory.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ "${EMU_FMA:-0}" = 1 ]; then
    if ! grep -qw fma /proc/cpuinfo; then
        echo "emu: FAILED: EMU_FMA=1 needs a CPU with FMA instructions (no 'fma' flag in /proc/cpuinfo)" >&2
        exit 1
    fi
    MODE="FMA (kernels with fused multiply-adds, as nvcc compiles them)"
    BIN=emu_tests_fma
else
    MODE="no FMA (every product and sum of the kernels rounded on its own)"
    BIN=emu_tests
fi
OUT="${EMU_BUILD_DIR:-$ROOT/build-emu}"
FILTER="${1:-Cuda*:*Gpu*:-*WithoutAGpu*:*WithoutGpu*}"
start=$(date +%s)
echo "emu: mode: $MODE; build folder $OUT, binary $BIN"
if [ -z "${EMU_LAUNCH_LOG:-}" ]; then
    export EMU_LAUNCH_LOG="$OUT/launches${BIN#emu_tests}.log"
    rm -f "$EMU_LAUNCH_LOG"
fi
cmake -S "$ROOT/tests/emu" -B "$OUT" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$OUT" -j"$(nproc)" --target "$BIN"
echo "emu: built in $(( $(date +%s) - start )) s; running --gtest_filter='$FILTER'"
shards=${EMU_SHARDS:-$(nproc)}
pids=()
for ((i = 0; i < shards; ++i)); do
    GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i \
        "$OUT/$BIN" --gtest_filter="$FILTER" >"$OUT/shard$i${BIN#emu_tests}.log" 2>&1 &
    pids+=($!)
done
rc=0
for ((i = 0; i < shards; ++i)); do
    wait "${pids[$i]}" || rc=1
done
ran=0; skipped=0
for ((i = 0; i < shards; ++i)); do
    cat "$OUT/shard$i${BIN#emu_tests}.log"
    ran=$(( ran + $(grep -cE '^\[       OK \] .* \([0-9]+ ms\)$' "$OUT/shard$i${BIN#emu_tests}.log" || true) ))
    skipped=$(( skipped + $(grep -cE '^\[  SKIPPED \] .* \([0-9]+ ms\)$' "$OUT/shard$i${BIN#emu_tests}.log" || true) ))
done
echo "emu: $ran GPU tests passed on the emulator, $skipped skipped, in $(( $(date +%s) - start )) s; mode: $MODE"
echo "emu: launch records in $EMU_LAUNCH_LOG (tools/check-kernels.sh reads them)"
if [ "$skipped" -ne 0 ]; then
    echo "emu: FAILED: a GPU test skipped on the emulator (it must run there)" >&2
    rc=1
fi
if [ "$ran" -eq 0 ] && [ "$rc" -eq 0 ]; then
    echo "emu: FAILED: the filter '$FILTER' selected no test" >&2
    rc=1
fi
exit $rc
