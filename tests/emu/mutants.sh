#!/usr/bin/env bash
# tests/emu/mutants.sh — proves the emulator's checker catches each kind of bug a real GPU would
# expose, by planting one bug at a time in a copy of a real kernel file and expecting the emulated
# GPU tests to fail with that kind of report. For each mutant below: copy the .cu file, replace one
# exact piece of text (which must occur exactly once: a mutant that no longer applies is an error,
# so the list keeps up with the kernels), rewrite and compile the copy as tests/emu/CMakeLists.txt
# does, link it in front of the emulator's library (its symbols replace the original kernel file's),
# run the given tests, and require a failing run whose output holds "emu checker: <kind>:".
#
# Usage: tests/emu/mutants.sh   (builds build-emu with tests/emu/run.sh's default configuration if
# needed: always the default rounding mode, whatever EMU_FMA says)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EMU="$ROOT/tests/emu"
OUT="${EMU_BUILD_DIR:-$ROOT/build-emu}"
start=$(date +%s)
unset EMU_LAUNCH_LOG  # a mutant's launches are no records of the real kernels
cmake -S "$EMU" -B "$OUT" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$OUT" -j"$(nproc)" --target emu_tests >/dev/null

# kind | file | tests | original text | planted text
MUTANTS=$(cat <<'EOF'
out-of-bounds global|pool2d.cu|CudaPool2d.FixedShapesMatchCpuExactly|        out[o] = best;|        out[o + 1] = best;
out-of-bounds shared|conv2d_filter.cu|CudaConv2d.FixedShapesMatchCpu|red_s[slice - 1][u][grp] = acc|red_s[slice][u][grp] = acc
uninitialized read|conv2d.cu|CudaConv2d.FixedShapesMatchCpu|for (int e = tid; e < in_count; e += kThreads) {|for (int e = tid; e < in_count - 1; e += kThreads) {
shared-memory race|conv2d.cu|CudaConv2d.FixedShapesMatchCpu|* C + c0 + cc) * K + k];\n                    w_s[e] = v;\n                }\n                __syncthreads();|* C + c0 + cc) * K + k];\n                    w_s[e] = v;\n                }
global write conflict|activation.cu|CudaActivation.ForwardAndBackwardMatchCpu|        out[e] = act_forward(bias ? in[e] + bias[e % cols] : in[e], act);|        out[e / 2 * 2] = act_forward(bias ? in[e] + bias[e % cols] : in[e], act);
barrier divergence|conv2d_filter.cu|CudaConv2d.FixedShapesMatchCpu|    const int tr = grp / KQ, tk = grp % KQ;|    const int tr = grp / KQ, tk = grp % KQ;\n    if (tid == 255) return;
shared-memory race|conv2d.cu|CudaConv2d.ConvMaxPoolInOneKernelIsBitIdenticalToTwoKernels|        a_s[pix * KG + kk] = act_forward(acc[m] + bk, act);\n    }\n    __syncthreads();|        a_s[pix * KG + kk] = act_forward(acc[m] + bk, act);\n    }
shared-memory race|conv2d_strip.cu|CudaConv2d.FixedShapesMatchCpu|            __syncthreads();  // every thread is done reading the previous chunk|            // (barrier removed)
block-order dependence|pool2d.cu|CudaPool2d.FixedShapesMatchCpuExactly|        out[o] = sum / area;|        out[o] = sum / area + (o >= 256 ? 0.0f * out[o - 256] : 0.0f);
launch bounds|dense.cu|CudaDense.ForwardChainIsBitIdenticalToOneForwardPerLayer|dense_chain_kernel<<<unsigned(blocks), kThreads, smem, stream>>>|dense_chain_kernel<<<unsigned(blocks), 2 * kThreads, smem, stream>>>
lazy loading|host/trainer.cpp|CudaEngine.GraphAndStreamFitsAreBitIdentical|        graphs_.push_back(StepGraph{b, global, src, a, seed_, nullptr});\n        return enqueue_step(src, b, global, mine.begin);|        graphs_.push_back(StepGraph{b, global, src, a, seed_, nullptr});\n        it = std::prev(graphs_.end());
cublas|cuda/context.cpp|CudaRuntimeGpu.ContextCublasHasAWorkspaceAndItsGemmsCaptureIntoAGraph|        MINICNN_CUBLAS_CHECK(cublasSetWorkspace(cublas_, workspace_, workspace_bytes_));|        (void)workspace_bytes_;
use after free|cuda/context.cpp|CudaRuntimeGpu.ContextCublasHasAWorkspaceAndItsGemmsCaptureIntoAGraph|        MINICNN_CUBLAS_CHECK(cublasSetWorkspace(cublas_, workspace_, workspace_bytes_));|        MINICNN_CUBLAS_CHECK(cublasSetWorkspace(cublas_, workspace_, workspace_bytes_));\n        (void)cudaFree(workspace_);\n        workspace_ = detail::device_malloc(workspace_bytes_, "the cuBLAS workspace");
cublas|cuda/context.cpp|CudaRuntimeGpu.ContextCublasHasAWorkspaceAndItsGemmsCaptureIntoAGraph|        MINICNN_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));|        (void)stream_;
EOF
)

flag() {  # a variable of a target's flags.make: flag TARGET VARIABLE
    sed -n "s/^$2 = //p" "$OUT/CMakeFiles/$1.dir/flags.make"
}
flags() {
    echo "$(flag "$1" CXX_FLAGS) $(flag "$1" CXX_DEFINES) $(flag "$1" CXX_INCLUDES)"
}
LINK=$(cat "$OUT/CMakeFiles/emu_tests.dir/link.txt")

# Each mutant in a process of its own, MUTANT_JOBS (default: the cores) at a time; the verdicts are
# printed in the list's order.
results=$(mktemp -d)
run_mutant() {
    local n=$1 kind=$2 file=$3 tests=$4 from=$5 to=$6 tmp src link rc
    tmp=$(mktemp -d)
    case "$file" in
        */*) src="$ROOT/$file" ;;
        *) src="$ROOT/cuda/$file" ;;
    esac
    file=$(basename "$file")
    cp "$src" "$tmp/$file"
    if ! python3 - "$tmp/$file" "$from" "$to" <<'PY'
import sys
path, a, b = sys.argv[1], sys.argv[2].replace("\\n", "\n"), sys.argv[3].replace("\\n", "\n")
src = open(path).read()
if src.count(a) != 1:
    sys.exit(f"mutant no longer applies: {src.count(a)} occurrences of {a!r}")
open(path, "w").write(src.replace(a, b))
PY
    then
        echo "mutants: FAILED: '$kind' in $file does not apply" >"$results/$n.miss"
        rm -rf "$tmp"; return
    fi
    if [ "${file##*.}" = cu ]; then
        python3 "$EMU/transform.py" "$tmp/$file" "$tmp/gen.cpp" "cuda/$file"
        # shellcheck disable=SC2086
        g++ $(flags emu_kernels) -c "$tmp/gen.cpp" -o "$tmp/kernels.o"
    else
        # shellcheck disable=SC2086
        g++ $(flags emu_host) -c "$tmp/$file" -o "$tmp/kernels.o"
    fi
    link=${LINK/ -o emu_tests / -o $tmp/emu_tests $tmp/kernels.o }
    (cd "$OUT" && eval "$link")
    set +e
    timeout 600 "$tmp/emu_tests" --gtest_filter="$tests" >"$tmp/log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -ne 0 ] && grep -q "emu checker: $kind:" "$tmp/log"; then
        echo "mutants: caught  $kind  ($file: $(grep -m1 "emu checker: $kind:" "$tmp/log" | cut -c1-200))" \
            >"$results/$n.ok"
    else
        { echo "mutants: MISSED  $kind  ($file, tests $tests, exit $rc); its output:"
          tail -30 "$tmp/log"; } >"$results/$n.miss"
    fi
    rm -rf "$tmp"
}
n=0
while IFS='|' read -r kind file tests from to; do
    [ -n "$kind" ] || continue
    n=$((n + 1))
    run_mutant "$n" "$kind" "$file" "$tests" "$from" "$to" &
    while [ "$(jobs -rp | wc -l)" -ge "${MUTANT_JOBS:-$(nproc)}" ]; do wait -n || true; done
done <<<"$MUTANTS"
wait
fail=0
for ((i = 1; i <= n; ++i)); do
    if [ -f "$results/$i.ok" ]; then
        cat "$results/$i.ok"
    else
        cat "$results/$i.miss" >&2 2>/dev/null || echo "mutants: mutant $i gave no verdict" >&2
        fail=1
    fi
done
rm -rf "$results"
echo "mutants: $n planted bugs, $( [ $fail -eq 0 ] && echo 'every one caught' || echo 'NOT all caught' ), in $(( $(date +%s) - start )) s"
exit $fail
