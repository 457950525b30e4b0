#!/usr/bin/env bash
# cuda/emu/run.sh — runs the GPU tests on the CPU, for machines without a GPU: the real kernels of
# cuda/*.cu (rewritten by transform.py) and the real cuda/context.cpp, cuda/ops_cuda.cpp and
# tests/test_{conv2d,pool2d,activation,cuda_runtime}.cpp, compiled by g++ against the fake CUDA
# runtime in include/ (cuda_runtime.h, cublas_v2.h, nvtx3). A launch runs one std::thread per CUDA
# thread; __syncthreads() is a std::barrier over the block and __shfl_xor_sync a barrier over the
# warp; blocks run one after another. Device memory is host memory, poisoned on allocation
# (0xA5 bytes) and shared memory is poisoned with NaN, so reads of unwritten data show up.
#
# What it checks: index math, tiling, chunking, halo staging, barrier placement (as far as one
# interleaving per run can), determinism, and that the tests themselves can fail (see the mutants
# listed in the report of the commit that added it). What it cannot check: real GPU timing, memory
# coalescing, races that need a particular interleaving (use compute-sanitizer racecheck:
# tools/gpu-check.sh), or anything about nvcc's code generation. It is slow (minutes), not part of
# the build, and not a substitute for tools/gpu-check.sh on a GPU.
#
# Usage: cuda/emu/run.sh [gtest filter, default 'Cuda*'] [--trace]    (needs g++ >= 11, gtest, zlib)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EMU="$ROOT/cuda/emu"
OUT="${EMU_BUILD_DIR:-$ROOT/build-emu}"
FILTER="${1:-Cuda*}"
TRACE="${2:-}"
mkdir -p "$OUT/src" "$OUT/obj"
for f in conv2d pool2d activation; do
    python3 "$EMU/transform.py" "$ROOT/cuda/$f.cu" "$OUT/src/$f.cpp" ${TRACE:+"$TRACE"}
done
FLAGS=(-std=c++20 -O2 -fopenmp -DMINICNN_WITH_CUDA=1 -Wno-unknown-pragmas -I"$EMU/include"
       -I"$ROOT/include" -I"$ROOT/host" -I"$ROOT/cuda" -I"$ROOT/tests"
       -DMINICNN_SOURCE_DIR="\"$ROOT\"" -DMINICNN_BINARY_DIR="\"$OUT\"")
# The host files the functional API and the CPU reference need (not all of host/: the training
# engine's CUDA path would need cuBLAS, which the emulator does not provide).
SRCS=("$ROOT"/host/{tensor,geometry,device,ops,conv2d,pool2d,activation}.cpp
      "$ROOT"/cuda/{context,ops_cuda}.cpp "$OUT"/src/{conv2d,pool2d,activation}.cpp
      "$ROOT"/tests/test_{conv2d,pool2d,activation,cuda_runtime}.cpp)
OBJS=()
for s in "${SRCS[@]}"; do
    o="$OUT/obj/$(tr '/' '_' <<<"${s#"$ROOT"/}").o"
    OBJS+=("$o")
    if [[ ! -f "$o" || "$s" -nt "$o" || "$EMU/include/cuda_runtime.h" -nt "$o" ]]; then
        echo "emu: compiling ${s#"$ROOT"/}"
        g++ "${FLAGS[@]}" -c "$s" -o "$o"
    fi
done
g++ -fopenmp -o "$OUT/emu_tests" "${OBJS[@]}" -lgtest -lgtest_main -lpthread -lz
echo "emu: running $OUT/emu_tests --gtest_filter='$FILTER'"
"$OUT/emu_tests" --gtest_filter="$FILTER"
