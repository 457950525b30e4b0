#!/usr/bin/env bash
# tools/gpu-check.sh — the one GPU check of minicnn, for a machine with an NVIDIA GPU (made for an H100).
#
#   1. refuses (exit 2, with the reason) when no GPU is visible;
#   2. builds everything (library, programs the tests run, tests) for sm_90 with the CUDA backend
#      (-DCMAKE_CUDA_ARCHITECTURES=90 -DMINICNN_CUDA=ON) in build-gpu-check/ (override: BUILD_DIR,
#      CUDA_ARCH);
#   3. runs the whole test suite (minicnn_tests); on a GPU machine no GPU test may skip;
#   4. runs compute-sanitizer memcheck, racecheck and initcheck over the GPU tests
#      (gtest filter SANITIZER_FILTER, default 'Cuda*:*Gpu*': CudaConv2d, CudaPool2d, CudaActivation,
#      CudaRuntime*, CudaEngine, GpuOutOfMemory, DeterminismGpu);
#   5. writes a report — device, driver, CUDA, commit, result per test, sanitizer summary — to
#      bench/results/gpu-check-<date>-<device>.md and prints its path.
# Exit status: 0 when everything passed, 1 when a test or a sanitizer failed, 2 when it cannot run
# here (no GPU, no compute-sanitizer, build failure).
#
# Usage: tools/gpu-check.sh            (from anywhere inside the repository)
# Env:   BUILD_DIR, CUDA_ARCH (90), JOBS (nproc), SANITIZER_FILTER ('Cuda*:*Gpu*'),
#        SANITIZER_TIMEOUT (seconds per tool, 3600), SKIP_SANITIZERS=1 (tests only; the report says so)
set -uo pipefail

die() {
    echo "gpu-check: $*" >&2
    exit 2
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || die "cannot enter $ROOT"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-gpu-check}"
CUDA_ARCH="${CUDA_ARCH:-90}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 4)}"
SANITIZER_FILTER="${SANITIZER_FILTER:-Cuda*:*Gpu*}"
SANITIZER_TIMEOUT="${SANITIZER_TIMEOUT:-3600}"
export PATH="$PATH:/usr/local/cuda/bin"

# ---- 1. a GPU must be visible --------------------------------------------------------------------
command -v nvidia-smi >/dev/null 2>&1 ||
    die "refusing to run: nvidia-smi not found, so no NVIDIA driver is installed and no GPU is visible. Run this on a GPU machine."
if ! GPU_LIST="$(nvidia-smi -L 2>&1)" || ! grep -q '^GPU ' <<<"$GPU_LIST"; then
    die "refusing to run: no GPU visible (nvidia-smi -L says: ${GPU_LIST:-nothing}). Run this on a GPU machine."
fi
DEVICE="$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 | head -n1 | sed 's/^ *//;s/ *$//')"
DRIVER="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader -i 0 | head -n1 | sed 's/ //g')"
CUDA_DRIVER="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -n1)"
NVCC_VERSION="$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -n1)"
SANITIZER="$(command -v compute-sanitizer || true)"
[[ -z "$SANITIZER" && -x /usr/local/cuda/compute-sanitizer/compute-sanitizer ]] &&
    SANITIZER=/usr/local/cuda/compute-sanitizer/compute-sanitizer
if [[ -z "$SANITIZER" && "${SKIP_SANITIZERS:-0}" != 1 ]]; then
    die "compute-sanitizer not found (looked on PATH and in /usr/local/cuda); install the CUDA toolkit's sanitizer or set SKIP_SANITIZERS=1"
fi

COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT (with uncommitted changes)"
STAMP="$(date -u +%Y%m%d-%H%M%S)"
DEVICE_SLUG="$(tr -c 'A-Za-z0-9\n' '-' <<<"$DEVICE" | sed 's/--*/-/g;s/^-//;s/-$//')"
REPORT="$ROOT/bench/results/gpu-check-$STAMP-$DEVICE_SLUG.md"
LOG_DIR="$BUILD_DIR/gpu-check-logs"
mkdir -p "$ROOT/bench/results" "$LOG_DIR" || die "cannot create the report or log folders"
echo "gpu-check: $DEVICE (driver $DRIVER), commit $COMMIT"

# ---- 2. build for sm_90 --------------------------------------------------------------------------
echo "gpu-check: building in $BUILD_DIR for sm_$CUDA_ARCH (log: $LOG_DIR/build.log)"
if ! { cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DMINICNN_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DMINICNN_BUILD_TESTS=ON &&
    cmake --build "$BUILD_DIR" -j "$JOBS"; } >"$LOG_DIR/build.log" 2>&1; then
    tail -n 40 "$LOG_DIR/build.log" >&2
    die "build failed (full log: $LOG_DIR/build.log)"
fi
TESTS="$BUILD_DIR/minicnn_tests"
[[ -x "$TESTS" ]] || die "build produced no $TESTS"

# ---- 3. the whole test suite ---------------------------------------------------------------------
echo "gpu-check: running the test suite"
"$TESTS" --gtest_output="xml:$LOG_DIR/tests.xml" >"$LOG_DIR/tests.log" 2>&1
TESTS_RC=$?
tail -n 3 "$LOG_DIR/tests.log"

# Per-test results from the gtest XML: "suite.name|status|time", status passed, FAILED, skipped, or
# "SKIPPED-NO-GPU" for a test that skipped because it found no GPU (an error on a GPU machine).
parse_results() {
    python3 - "$1" <<'PY' 2>/dev/null
import re, sys, xml.etree.ElementTree as ET
no_gpu = re.compile(r"no usable CUDA device|no CUDA device visible|built without CUDA|CUDA device requested but unavailable")
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    name = case.get("classname", "") + "." + case.get("name", "")
    skipped = case.find("skipped")
    if case.find("failure") is not None or case.find("error") is not None:
        status = "FAILED"
    elif skipped is not None or case.get("result") == "skipped" or case.get("status") == "notrun":
        text = "" if skipped is None else (skipped.get("message", "") + (skipped.text or ""))
        status = "SKIPPED-NO-GPU" if no_gpu.search(text) else "skipped"
    else:
        status = "passed"
    print(f"{name}|{status}|{case.get('time', '')}")
PY
}
RESULTS="$(parse_results "$LOG_DIR/tests.xml")"
if [[ -z "$RESULTS" ]]; then
    # No python3: fall back to gtest's console output (and to the suite names for GPU tests).
    RESULTS="$(sed -n 's/^\[ *\(OK\|FAILED\|SKIPPED\) *\] \([A-Za-z0-9_./]*\) (\([0-9]*\) ms)$/\2|\1|\3ms/p' "$LOG_DIR/tests.log" |
        sed 's/|OK|/|passed|/;s/^\(Cuda[^|]*\|[^|]*Gpu[^|]*\)|SKIPPED|/\1|SKIPPED-NO-GPU|/;s/|SKIPPED|/|skipped|/')"
fi
N_PASS="$(grep -c '|passed|' <<<"$RESULTS")"
N_FAIL="$(grep -c '|FAILED|' <<<"$RESULTS")"
N_SKIP="$(grep -ci '|skipped' <<<"$RESULTS")"
GPU_SKIPS="$(grep '|SKIPPED-NO-GPU|' <<<"$RESULTS" | cut -d'|' -f1 || true)"
TESTS_OK=1
[[ $TESTS_RC -ne 0 || $N_FAIL -ne 0 ]] && TESTS_OK=0
[[ -n "$GPU_SKIPS" ]] && TESTS_OK=0  # on a GPU machine, no GPU test may skip

# ---- 4. compute-sanitizer over the GPU tests -----------------------------------------------------
SAN_OK=1
SAN_ROWS=""
if [[ "${SKIP_SANITIZERS:-0}" == 1 ]]; then
    SAN_OK=0
    SAN_ROWS="| (all) | not run (SKIP_SANITIZERS=1) | - | - |"$'\n'
else
    for tool in memcheck racecheck initcheck; do
        echo "gpu-check: compute-sanitizer --tool $tool on '$SANITIZER_FILTER' (log: $LOG_DIR/sanitizer-$tool.log)"
        extra=()
        [[ $tool == racecheck ]] && extra=(--racecheck-report all)
        start=$(date +%s)
        timeout "$SANITIZER_TIMEOUT" "$SANITIZER" --tool "$tool" "${extra[@]}" --error-exitcode 99 \
            "$TESTS" --gtest_filter="$SANITIZER_FILTER" >"$LOG_DIR/sanitizer-$tool.log" 2>&1
        rc=$?
        secs=$(($(date +%s) - start))
        summary="$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$LOG_DIR/sanitizer-$tool.log" | tail -n1 | sed 's/^=* *//')"
        gtest="$(grep -E '^\[  (PASSED|FAILED) ' "$LOG_DIR/sanitizer-$tool.log" | tr '\n' ' ' | sed 's/  */ /g')"
        if [[ $rc -eq 124 ]]; then
            verdict="TIMEOUT after ${SANITIZER_TIMEOUT}s"
        elif [[ $rc -eq 0 ]]; then
            verdict="clean"
        else
            verdict="FAILED (exit $rc)"
        fi
        [[ $rc -ne 0 ]] && SAN_OK=0
        SAN_ROWS+="| $tool | $verdict | ${summary:-no summary line} | ${gtest:-?} (${secs}s) |"$'\n'
        echo "gpu-check:   $tool: $verdict; ${summary:-no summary line}"
    done
fi

# ---- 5. the report -------------------------------------------------------------------------------
{
    echo "# minicnn GPU check — $DEVICE — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| Device | $DEVICE |"
    echo "| Driver | $DRIVER (CUDA ${CUDA_DRIVER:-?}) |"
    echo "| Toolkit | nvcc ${NVCC_VERSION:-?}, built for sm_$CUDA_ARCH |"
    echo "| Commit | $COMMIT |"
    echo "| Host | $(hostname) |"
    echo "| Tests | $N_PASS passed, $N_FAIL failed, $N_SKIP skipped (exit $TESTS_RC) |"
    echo "| Sanitizers | $([[ $SAN_OK == 1 ]] && echo clean || echo 'NOT clean or not run') |"
    echo "| Verdict | $([[ $TESTS_OK == 1 && $SAN_OK == 1 ]] && echo PASS || echo FAIL) |"
    echo
    if [[ -n "$GPU_SKIPS" ]]; then
        echo "GPU tests that skipped although a GPU is visible:"
        echo
        sed 's/^/- /' <<<"$GPU_SKIPS"
        echo
    fi
    echo "## compute-sanitizer (filter \`$SANITIZER_FILTER\`)"
    echo
    echo "| tool | verdict | summary | gtest |"
    echo "|---|---|---|---|"
    printf '%s' "$SAN_ROWS"
    echo
    echo "## Tests"
    echo
    echo "| test | result | time |"
    echo "|---|---|---|"
    while IFS='|' read -r name status time; do
        [[ -n "$name" ]] && echo "| $name | $status | $time |"
    done <<<"$RESULTS"
    echo
    echo "Logs: \`${LOG_DIR#"$ROOT"/}/\` (build.log, tests.log, tests.xml, sanitizer-*.log)."
} >"$REPORT"

echo "gpu-check: report written to $REPORT"
if [[ $TESTS_OK == 1 && $SAN_OK == 1 ]]; then
    echo "gpu-check: PASS"
    exit 0
fi
echo "gpu-check: FAIL (tests ok: $TESTS_OK, sanitizers ok: $SAN_OK)" >&2
exit 1
