#!/usr/bin/env bash
# tools/gpu-check.sh — the one GPU check of minicnn, for a machine with an NVIDIA GPU (an H100 or
# H200: sm_90), within one time budget (GPU_CHECK_BUDGET, 540 s: a lent GPU gives 15 minutes in
# all, start-up included).
#
#   0. preflight: a GPU is visible (nvidia-smi), and the driver supports this toolkit (the driver's
#      CUDA version, from nvidia-smi, has at least nvcc's major version: one line saying both when
#      not; a newer minor toolkit on the same major runs by CUDA's minor-version compatibility);
#      compute-sanitizer is there;
#   1. builds everything for sm_90 in build-gpu-check/ (BUILD_DIR, CUDA_ARCH), or, with
#      --prebuilt, uses BUILD_DIR as it is (a build carried to the machine);
#   2. runs each GPU test (SANITIZER_FILTER: every Cuda* and *Gpu* test) in a process of its own
#      under compute-sanitizer, once per tool (memcheck, racecheck, initcheck, synccheck), so that
#      a sticky fault names its test; SANITIZER_JOBS processes at a time;
#   3. runs the whole test suite (no GPU test may skip on a GPU machine);
#   4. trains LeNet-5 on Fashion-MNIST for one epoch on the GPU (minicnn train --device cuda), when
#      the data is there (DATA_DIR);
#   5. runs the benchmarks (bench/run.sh --quick --no-build, into bench/results/);
#   6. writes a report — device, driver, toolkit, commit, each phase with its time, the sanitizer
#      table per test and tool, every test's result — to bench/results/gpu-check-<date>-<device>.md.
# Each phase gets what is left of the budget (and at most its own cap); a phase the budget did not
# reach is reported as not run. Nothing in the report was not measured in this run.
#
# --dry-run: everything up to the point where a GPU is needed, on any machine (CI runs it): the
# tools, the driver-check logic on known cases, the build (BUILD_DIR: CI passes its own build
# folder, configured the same, so nothing is rebuilt), the list of GPU tests each tool will run,
# and the plan with its time caps; it writes the plan to $BUILD_DIR/gpu-check-logs/dry-run.md
# and exits 0 when everything up to the GPU is ready.
#
# Exit status: 0 when everything passed, 1 when a test, a sanitizer or training failed, 2 when it
# cannot run here (no GPU, a driver older than the toolkit, no compute-sanitizer, a build failure).
#
# Usage: tools/gpu-check.sh [--dry-run] [--prebuilt]
# Env:   BUILD_DIR (build-gpu-check), CUDA_ARCH (90; "default": the project's), JOBS (nproc), GPU_CHECK_BUDGET (540),
#        SANITIZER_FILTER, SANITIZER_TOOLS ("memcheck racecheck initcheck synccheck"),
#        SANITIZER_JOBS (8), SANITIZER_TEST_TIMEOUT (120 s per process), DATA_DIR (Debian's
#        Fashion-MNIST), SKIP_SANITIZERS=1, SKIP_BENCH=1
set -uo pipefail

die() {
    echo "gpu-check: $*" >&2
    exit 2
}

DRY_RUN=0
PREBUILT=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        --prebuilt) PREBUILT=1 ;;
        -h | --help)
            sed -n '2,38p' "$0"
            exit 0
            ;;
        *) die "unknown argument '$arg' (usage: tools/gpu-check.sh [--dry-run] [--prebuilt])" ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || die "cannot enter $ROOT"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-gpu-check}"
CUDA_ARCH="${CUDA_ARCH:-90}"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 4)}"
BUDGET="${GPU_CHECK_BUDGET:-540}"
SANITIZER_FILTER="${SANITIZER_FILTER:-Cuda*:*Gpu*:-*WithoutAGpu*:*WithoutGpu*}"
SANITIZER_TOOLS="${SANITIZER_TOOLS:-memcheck racecheck initcheck synccheck}"
SANITIZER_JOBS="${SANITIZER_JOBS:-8}"
SANITIZER_TEST_TIMEOUT="${SANITIZER_TEST_TIMEOUT:-120}"
DATA_DIR="${DATA_DIR:-/usr/share/datasets/fashion-mnist}"
export PATH="$PATH:/usr/local/cuda/bin"
START=$(date +%s)
LOG_DIR="$BUILD_DIR/gpu-check-logs"
mkdir -p "$LOG_DIR" || die "cannot create $LOG_DIR"

# Seconds of the budget left, and the time a phase with cap $1 may take (0: none left).
left() { echo $((BUDGET - ($(date +%s) - START))); }
phase_time() {
    local l
    l=$(left)
    ((l <= 0)) && { echo 0; return; }
    ((l < $1)) && echo "$l" || echo "$1"
}
PHASES=""  # report rows: | phase | result | seconds |
phase_row() { PHASES+="| $1 | $2 | $3 |"$'\n'; }

# The driver check: "ok" when a driver whose CUDA version is $1 (nvidia-smi's "CUDA Version")
# runs code built by a toolkit of version $2 (nvcc's release), else the reason. Minor-version
# compatibility: the same major version (or a newer driver) suffices for code built to SASS.
driver_verdict() {
    local drv="$1" tk="$2"
    [[ -z "$drv" || -z "$tk" ]] && { echo "cannot compare: driver CUDA '${drv:-?}', toolkit '${tk:-?}'"; return; }
    if ((${drv%%.*} < ${tk%%.*})); then
        echo "the driver supports CUDA $drv, older than this toolkit's $tk: the kernels cannot load (install a driver for CUDA ${tk%%.*}.x, or build with a toolkit of CUDA ${drv%%.*}.x)"
    else
        echo ok
    fi
}

# ---- 0. preflight --------------------------------------------------------------------------------
NVCC_VERSION="$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -n1)"
[[ -n "$NVCC_VERSION" || $PREBUILT == 1 ]] || die "nvcc not found (looked on PATH and in /usr/local/cuda/bin)"
SANITIZER="$(command -v compute-sanitizer || true)"
[[ -z "$SANITIZER" && -x /usr/local/cuda/compute-sanitizer/compute-sanitizer ]] &&
    SANITIZER=/usr/local/cuda/compute-sanitizer/compute-sanitizer
GPU_REASON=""
if ! command -v nvidia-smi >/dev/null 2>&1; then
    GPU_REASON="nvidia-smi not found, so no NVIDIA driver is installed and no GPU is visible"
elif ! GPU_LIST="$(nvidia-smi -L 2>&1)" || ! grep -q '^GPU ' <<<"$GPU_LIST"; then
    GPU_REASON="no GPU visible (nvidia-smi -L says: ${GPU_LIST:-nothing})"
fi

if [[ $DRY_RUN == 1 ]]; then
    # The driver check's logic on known cases, since there is no driver to ask here.
    for case in "13.0 13.0 ok" "13.2 13.0 ok" "13.0 13.4 ok" "12.8 13.0 refuse" "14.0 13.0 ok"; do
        read -r d t want <<<"$case"
        got="$(driver_verdict "$d" "$t")"
        [[ ($want == ok && $got == ok) || ($want == refuse && $got != ok) ]] ||
            die "dry run: the driver check is wrong for driver $d, toolkit $t: '$got'"
    done
    echo "gpu-check: dry run: driver check logic ok; this machine: ${GPU_REASON:-a GPU is visible}"
    [[ -n "$SANITIZER" ]] || echo "gpu-check: dry run: compute-sanitizer not found here (a GPU machine needs it)"
    DEVICE="(dry run: no GPU used)"
    DRIVER="-"
    CUDA_DRIVER="-"
else
    [[ -z "$GPU_REASON" ]] || die "refusing to run: $GPU_REASON. Run this on a GPU machine (or with --dry-run)."
    DEVICE="$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 | head -n1 | sed 's/^ *//;s/ *$//')"
    DRIVER="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader -i 0 | head -n1 | sed 's/ //g')"
    CUDA_DRIVER="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -n1)"
    verdict="$(driver_verdict "$CUDA_DRIVER" "$NVCC_VERSION")"
    [[ $verdict == ok ]] || die "driver $DRIVER: $verdict"
    if [[ -z "$SANITIZER" && "${SKIP_SANITIZERS:-0}" != 1 ]]; then
        die "compute-sanitizer not found (looked on PATH and in /usr/local/cuda); install the CUDA toolkit's sanitizer or set SKIP_SANITIZERS=1"
    fi
fi
COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT (with uncommitted changes)"
echo "gpu-check: ${DEVICE} (driver $DRIVER, CUDA $CUDA_DRIVER; nvcc ${NVCC_VERSION:-?}), commit $COMMIT, budget ${BUDGET}s"

# ---- 1. build ------------------------------------------------------------------------------------
t0=$(date +%s)
if [[ $PREBUILT == 1 ]]; then
    phase_row build "prebuilt $BUILD_DIR" 0
else
    echo "gpu-check: building in $BUILD_DIR for sm_$CUDA_ARCH (log: $LOG_DIR/build.log)"
    cap=$(phase_time 300)
    arch_flag="-DCMAKE_CUDA_ARCHITECTURES='$CUDA_ARCH'"
    [[ $CUDA_ARCH == default ]] && arch_flag=""  # the project's default (CMakeLists.txt)
    if ! timeout "$cap" bash -c "cmake -S '$ROOT' -B '$BUILD_DIR' -DCMAKE_BUILD_TYPE=Release -DMINICNN_CUDA=ON \
        $arch_flag -DMINICNN_BUILD_TESTS=ON && cmake --build '$BUILD_DIR' -j '$JOBS'" \
        >"$LOG_DIR/build.log" 2>&1; then
        tail -n 40 "$LOG_DIR/build.log" >&2
        die "build failed or ran past ${cap}s (full log: $LOG_DIR/build.log)"
    fi
    phase_row build "built for sm_$CUDA_ARCH" $(($(date +%s) - t0))
fi
TESTS="$BUILD_DIR/minicnn_tests"
PROGRAM="$BUILD_DIR/minicnn"
[[ -x "$TESTS" ]] || die "no test binary at $TESTS"

# The GPU tests, one name a line.
GPU_TESTS="$("$TESTS" --gtest_list_tests --gtest_filter="$SANITIZER_FILTER" 2>/dev/null |
    awk '/^[^ ]/ { suite = $1 } /^  / { print suite $1 }')"
N_GPU_TESTS=$(grep -c . <<<"$GPU_TESTS")
((N_GPU_TESTS > 0)) || die "the filter '$SANITIZER_FILTER' selects no test in $TESTS"

# Runs every (tool, GPU test) pair of $1 (tools) x $2 (tests, a line each) under $SANITIZER, each
# in a process of its own, $SANITIZER_JOBS at a time, until $3 seconds from now; sets SAN_OK and
# SAN_ROWS (| test | tool | verdict |). A pair the deadline did not reach is "not run".
run_sanitizers() {
    local tools="$1" tests="$2" cap="$3" tool test rcf rc summary verdict
    SAN_DIR="$LOG_DIR/sanitizer"
    rm -rf "$SAN_DIR" && mkdir -p "$SAN_DIR"
    SAN_DEADLINE=$(($(date +%s) + cap))
    export SANITIZER TESTS SAN_DIR SANITIZER_TEST_TIMEOUT SAN_DEADLINE
    # One line per job: "tool test"; each writes SAN_DIR/tool.test.{log,rc}. A job starts only
    # while the phase has time left and runs at most until the phase's deadline, so the phase
    # ends on time with no process left behind.
    for tool in $tools; do sed "s/^/$tool /" <<<"$tests"; done |
        xargs -P "$SANITIZER_JOBS" -L 1 bash -c '
            tool=$1 test=$2 extra=()
            left=$((SAN_DEADLINE - $(date +%s)))
            ((left > 0)) || exit 0
            ((left < SANITIZER_TEST_TIMEOUT)) || left=$SANITIZER_TEST_TIMEOUT
            [[ $tool == racecheck ]] && extra=(--racecheck-report all)
            timeout "$left" "$SANITIZER" --tool "$tool" "${extra[@]}" --error-exitcode 99 \
                "$TESTS" --gtest_filter="$test" >"$SAN_DIR/$tool.$test.log" 2>&1
            echo $? >"$SAN_DIR/$tool.$test.rc"' _
    SAN_OK=1
    SAN_ROWS=""
    for tool in $tools; do
        while read -r test; do
            rcf="$SAN_DIR/$tool.$test.rc"
            if [[ ! -f $rcf ]]; then
                verdict="not run (budget)"
                SAN_OK=0
            else
                rc=$(cat "$rcf")
                summary="$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$SAN_DIR/$tool.$test.log" | tail -n1 | sed 's/^=* *//')"
                case $rc in
                    0) verdict="clean" ;;
                    124) verdict="TIMEOUT (per-test limit or the phase's end)" ;;
                    *) verdict="FAILED (exit $rc): ${summary:-see log}" ;;
                esac
                [[ $rc -ne 0 ]] && SAN_OK=0
            fi
            SAN_ROWS+="| $test | $tool | $verdict |"$'\n'
        done <<<"$tests"
    done
}

if [[ $DRY_RUN == 1 ]]; then
    n_tools=$(wc -w <<<"$SANITIZER_TOOLS")
    {
        echo "# minicnn GPU check — dry run — $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "Commit $COMMIT; toolkit nvcc ${NVCC_VERSION:-?}; build $BUILD_DIR; budget ${BUDGET}s."
        echo "This machine: ${GPU_REASON:-a GPU is visible}."
        echo
        echo "| phase | plan | cap (s) |"
        echo "|---|---|---|"
        echo "| build | cmake for sm_$CUDA_ARCH, $JOBS jobs | 300 |"
        echo "| sanitizers | $N_GPU_TESTS GPU tests x $n_tools tools ($SANITIZER_TOOLS), one process each, $SANITIZER_JOBS at a time, ${SANITIZER_TEST_TIMEOUT}s each | 240 |"
        echo "| suite | $TESTS, every test | 120 |"
        echo "| training | $PROGRAM train --device cuda --epochs 1 --batch-size 256 on $DATA_DIR | 90 |"
        echo "| benchmarks | bench/run.sh --quick --no-build | 120 |"
        echo
        echo "GPU tests:"
        echo
        sed 's/^/- /' <<<"$GPU_TESTS"
    } >"$LOG_DIR/dry-run.md"
    # The sanitizer phase's machinery, rehearsed on two GPU tests with a stand-in for
    # compute-sanitizer that runs the test as it is (here the tests skip: no GPU): one process per
    # (tool, test), the deadline, the verdicts.
    SANITIZER="$LOG_DIR/stand-in-sanitizer.sh"
    printf '%s\n' '#!/usr/bin/env bash' \
        '# gpu-check --dry-run: compute-sanitizer options dropped, the test run as it is.' \
        'while [[ $1 == --* ]]; do shift 2; done' 'exec "$@"' >"$SANITIZER"
    chmod +x "$SANITIZER"
    run_sanitizers "$SANITIZER_TOOLS" "$(head -n 2 <<<"$GPU_TESTS")" 120
    [[ $SAN_OK == 1 && $(grep -c '| clean |' <<<"$SAN_ROWS") -eq $((2 * $(wc -w <<<"$SANITIZER_TOOLS"))) ]] ||
        die "dry run: the sanitizer phase's rehearsal failed:"$'\n'"$SAN_ROWS"
    echo "gpu-check: dry run: sanitizer machinery rehearsed on 2 tests x $(wc -w <<<"$SANITIZER_TOOLS") tools (stand-in for compute-sanitizer)"
    echo "gpu-check: dry run: $N_GPU_TESTS GPU tests x $(wc -w <<<"$SANITIZER_TOOLS") sanitizer tools planned; plan in $LOG_DIR/dry-run.md"
    echo "gpu-check: dry run: ready up to the point where a GPU is needed"
    exit 0
fi

# ---- 2. compute-sanitizer, one process per (tool, test) ------------------------------------------
SAN_OK=1
SAN_ROWS=""
t0=$(date +%s)
if [[ "${SKIP_SANITIZERS:-0}" == 1 ]]; then
    SAN_OK=0
    phase_row sanitizers "not run (SKIP_SANITIZERS=1)" 0
else
    cap=$(phase_time 240)
    run_sanitizers "$SANITIZER_TOOLS" "$GPU_TESTS" "$cap"
    phase_row sanitizers "$([[ $SAN_OK == 1 ]] && echo clean || echo 'NOT clean or not complete')" $(($(date +%s) - t0))
    echo "gpu-check: sanitizers: $([[ $SAN_OK == 1 ]] && echo clean || echo 'NOT clean or not complete') ($(grep -c 'clean |' <<<"$SAN_ROWS") of $((N_GPU_TESTS * $(wc -w <<<"$SANITIZER_TOOLS"))) clean)"
fi

# ---- 3. the whole test suite ---------------------------------------------------------------------
t0=$(date +%s)
cap=$(phase_time 120)
echo "gpu-check: running the test suite"
timeout "$cap" "$TESTS" --gtest_output="xml:$LOG_DIR/tests.xml" >"$LOG_DIR/tests.log" 2>&1
TESTS_RC=$?
tail -n 3 "$LOG_DIR/tests.log"
# Per-test results from the gtest XML: "suite.name|status|time", status passed, FAILED, skipped, or
# "SKIPPED-NO-GPU" for a test that skipped because it found no GPU (an error on a GPU machine).
RESULTS="$(python3 - "$LOG_DIR/tests.xml" <<'PY' 2>/dev/null
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
)"
N_PASS="$(grep -c '|passed|' <<<"$RESULTS")"
N_FAIL="$(grep -c '|FAILED|' <<<"$RESULTS")"
N_SKIP="$(grep -ci '|skipped' <<<"$RESULTS")"
GPU_SKIPS="$(grep '|SKIPPED-NO-GPU|' <<<"$RESULTS" | cut -d'|' -f1 || true)"
TESTS_OK=1
[[ $TESTS_RC -ne 0 || $N_FAIL -ne 0 || -z "$RESULTS" ]] && TESTS_OK=0
[[ -n "$GPU_SKIPS" ]] && TESTS_OK=0  # on a GPU machine, no GPU test may skip
phase_row suite "$N_PASS passed, $N_FAIL failed, $N_SKIP skipped (exit $TESTS_RC)" $(($(date +%s) - t0))

# ---- 4. LeNet-5 on Fashion-MNIST -----------------------------------------------------------------
t0=$(date +%s)
TRAIN_OK=1
cap=$(phase_time 90)
if [[ ! -d "$DATA_DIR" ]]; then
    phase_row training "not run: no data at $DATA_DIR (DATA_DIR)" 0
elif ((cap == 0)); then
    TRAIN_OK=0
    phase_row training "not run (budget)" 0
else
    echo "gpu-check: training LeNet-5 for one epoch on the GPU (log: $LOG_DIR/train.log)"
    if timeout "$cap" "$PROGRAM" train --device cuda --epochs 1 --batch-size 256 --data "$DATA_DIR" \
        --json "$LOG_DIR/train.json" >"$LOG_DIR/train.log" 2>&1; then
        phase_row training "$(tail -n 1 "$LOG_DIR/train.log")" $(($(date +%s) - t0))
    else
        TRAIN_OK=0
        phase_row training "FAILED (exit $?): $(tail -n 1 "$LOG_DIR/train.log")" $(($(date +%s) - t0))
    fi
fi

# ---- 5. benchmarks -------------------------------------------------------------------------------
t0=$(date +%s)
cap=$(phase_time 120)
if [[ "${SKIP_BENCH:-0}" == 1 ]]; then
    phase_row benchmarks "not run (SKIP_BENCH=1)" 0
elif ((cap == 0)); then
    phase_row benchmarks "not run (budget)" 0
else
    echo "gpu-check: benchmarks (log: $LOG_DIR/bench.log)"
    if BUILD_DIR="$BUILD_DIR" timeout "$cap" bash bench/run.sh --quick --no-build >"$LOG_DIR/bench.log" 2>&1; then
        phase_row benchmarks "$(grep -o 'bench/results/[^ ]*\.md' "$LOG_DIR/bench.log" | tail -n1)" $(($(date +%s) - t0))
    else
        phase_row benchmarks "FAILED or cut at ${cap}s (exit $?; see $LOG_DIR/bench.log)" $(($(date +%s) - t0))
    fi
fi

# ---- 6. the report -------------------------------------------------------------------------------
STAMP="$(date -u +%Y%m%d-%H%M%S)"
DEVICE_SLUG="$(tr -c 'A-Za-z0-9\n' '-' <<<"$DEVICE" | sed 's/--*/-/g;s/^-//;s/-$//')"
mkdir -p "$ROOT/bench/results" || die "cannot create bench/results"
REPORT="$ROOT/bench/results/gpu-check-$STAMP-$DEVICE_SLUG.md"
PASS=$([[ $TESTS_OK == 1 && $SAN_OK == 1 && $TRAIN_OK == 1 ]] && echo PASS || echo FAIL)
{
    echo "# minicnn GPU check — $DEVICE — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| Device | $DEVICE |"
    echo "| Driver | $DRIVER (CUDA ${CUDA_DRIVER:-?}) |"
    echo "| Toolkit | nvcc ${NVCC_VERSION:-?}, built for sm_$CUDA_ARCH |"
    echo "| Commit | $COMMIT |"
    echo "| Command | tools/gpu-check.sh $* |"
    echo "| Host | $(hostname) |"
    echo "| Time | $(($(date +%s) - START)) s of a ${BUDGET} s budget |"
    echo "| Verdict | $PASS |"
    echo
    echo "| phase | result | seconds |"
    echo "|---|---|---|"
    printf '%s' "$PHASES"
    echo
    if [[ -n "$GPU_SKIPS" ]]; then
        echo "GPU tests that skipped although a GPU is visible:"
        echo
        sed 's/^/- /' <<<"$GPU_SKIPS"
        echo
    fi
    echo "## compute-sanitizer, one process per test and tool"
    echo
    echo "| test | tool | verdict |"
    echo "|---|---|---|"
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
    echo "Logs: \`${LOG_DIR#"$ROOT"/}/\` (build.log, sanitizer/, tests.log, tests.xml, train.log, bench.log)."
} >"$REPORT"

echo "gpu-check: report written to $REPORT"
if [[ $PASS == PASS ]]; then
    echo "gpu-check: PASS in $(($(date +%s) - START)) s"
    exit 0
fi
echo "gpu-check: FAIL (tests ok: $TESTS_OK, sanitizers ok: $SAN_OK, training ok: $TRAIN_OK)" >&2
exit 1
