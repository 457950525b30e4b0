#!/usr/bin/env bash
# fuzz/build.sh — builds the libFuzzer harnesses with clang, ASan and UBSan, without CMake:
# the needed host sources are compiled directly. Output: $FUZZ_OUT (default build-fuzz/) holding
# idx_fuzzer, checkpoint_fuzzer and safetensors_fuzzer. FUZZ_CXX picks the compiler (default
# clang++).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${FUZZ_OUT:-build-fuzz}
cxx=${FUZZ_CXX:-clang++}
mkdir -p "$out"
flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=all -Iinclude -Ihost)
# The parsers need Tensor (host/tensor.cpp) and zlib, the checkpoint's also host/file_io.cpp (its
# save and load), the safetensors parser nlohmann-json (header-only); nothing else from the
# library.
"$cxx" "${flags[@]}" fuzz/idx_fuzzer.cpp host/idx.cpp host/tensor.cpp -lz -o "$out/idx_fuzzer" &
p1=$!
"$cxx" "${flags[@]}" fuzz/checkpoint_fuzzer.cpp host/checkpoint.cpp host/file_io.cpp \
    host/tensor.cpp -lz -o "$out/checkpoint_fuzzer" &
p2=$!
"$cxx" "${flags[@]}" fuzz/safetensors_fuzzer.cpp host/safetensors.cpp host/tensor.cpp \
    -o "$out/safetensors_fuzzer" &
p3=$!
rc=0
wait "$p1" || rc=1
wait "$p2" || rc=1
wait "$p3" || rc=1
if [ "$rc" -ne 0 ]; then echo "fuzz/build.sh: compilation failed" >&2; exit 1; fi
echo "built $out/idx_fuzzer $out/checkpoint_fuzzer $out/safetensors_fuzzer"
