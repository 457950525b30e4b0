#!/usr/bin/env bash
# bench/run.sh — every benchmark this machine supports, in one run, written to
# bench/results/<date>-<device>.md and .json (device, driver, commit, command line, load included).
#
#   1. ops on the CPU: minicnn's CPU backend (build/bench/minicnn_bench) against PyTorch's CPU
#      operators (bench/torch_ops.py), validated on the same inputs (dumped by the harness) first;
#   2. ops on the GPU: minicnn's CUDA launchers against cuDNN, validated against each other first
#      (skipped, with the reason, where there is no GPU or the build has no CUDA/cuDNN);
#   1b. the exercise's four functions as users call them: from Python (bench/python_ops.py, the
#      minicnn module against PyTorch in the same process) and through the C++ API (minicnn_bench's
#      api_* rows, against bench/torch_ops.py's peers);
#   3. LeNet-5 training throughput, data resident, at each batch of TRAIN_BATCHES: on the CPU
#      through bench/train_cpu_vs_torch.py, on the GPU `minicnn train --device cuda` against
#      bench/train_gpu_torch.py (GPU part skipped without a GPU).
# Every PyTorch peer runs with $PYTHON (Debian's PyTorch 1.13) and, when TORCH2_PYTHON names an
# interpreter with PyTorch 2 (bench/README.md says how to make one), with that one too.
# Nothing is reported that was not measured in this run.
#
# Usage: bench/run.sh [--quick] [--no-build] [--no-train] [--out DIR]
# Environment: BUILD_DIR (default build), PYTHON (default /usr/bin/python3: Debian's, with torch),
#   CPU_THREADS (threads for both minicnn and PyTorch on the CPU, default 2), MIN_TIME (seconds of
#   timed calls per CPU op, default 0.5), GPU_REPS (timed repetitions per GPU op, default 50),
#   TRAIN_EPOCHS (timed training epochs, default 3), TRAIN_ROUNDS (CPU training: minicnn and
#   every PyTorch run in turn this many times, the median round reported; default 3),
#   TRAIN_BATCHES (CPU training batch sizes, default "256 32"), TORCH2_PYTHON (a second
#   PyTorch's interpreter, default none).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

BUILD_DIR=${BUILD_DIR:-build}
PY=${PYTHON:-/usr/bin/python3}
CPU_THREADS=${CPU_THREADS:-2}
MIN_TIME=${MIN_TIME:-0.5}
GPU_REPS=${GPU_REPS:-50}
TRAIN_EPOCHS=${TRAIN_EPOCHS:-3}
TRAIN_BATCHES=${TRAIN_BATCHES:-256 32}
TRAIN_ROUNDS=${TRAIN_ROUNDS:-3}
TORCH2_PYTHON=${TORCH2_PYTHON:-}
OUT_DIR=bench/results
build=1
train=1
quick=0
args_line="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; MIN_TIME=0.1; GPU_REPS=10; TRAIN_EPOCHS=1; TRAIN_ROUNDS=1 ;;
    --no-build) build=0 ;;
    --no-train) train=0 ;;
    --out) OUT_DIR=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# The command as run, with the knobs that shaped it.
command_line="BUILD_DIR=$BUILD_DIR CPU_THREADS=$CPU_THREADS MIN_TIME=$MIN_TIME GPU_REPS=$GPU_REPS TRAIN_EPOCHS=$TRAIN_EPOCHS TRAIN_BATCHES='$TRAIN_BATCHES' TRAIN_ROUNDS=$TRAIN_ROUNDS${TORCH2_PYTHON:+ TORCH2_PYTHON=$TORCH2_PYTHON} bench/run.sh${args_line:+ $args_line}"

say() { printf '\n== %s\n' "$*"; }
notes=()

# ---- build ---------------------------------------------------------------------------------------
if [ "$build" = 1 ]; then
  say "building in $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  # The harness and the `minicnn` program (CMake target minicnn_program; `minicnn` is the library).
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target minicnn_bench
  if [ -f tools/minicnn.cpp ]; then
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target minicnn_program
  fi
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target minicnn_python || true  # needs pybind11
fi
BENCH="$BUILD_DIR/bench/minicnn_bench"
MINICNN="$BUILD_DIR/minicnn"
[ -x "$BENCH" ] || { echo "bench/run.sh: $BENCH not found (build first, or drop --no-build)" >&2; exit 1; }

# ---- the machine ---------------------------------------------------------------------------------
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${load_before%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
  echo "bench/run.sh: warning: load average ${load_before%% *} exceeds the $(nproc) cores; CPU timings will be noisy" >&2
  notes+=("the machine was busy when the run started (load ${load_before%% *} on $(nproc) cores): CPU timings are noisy")
fi
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
cpu_cores=$(nproc)
gpu_name=""
driver=""
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)
fi
# A CPU's name alone can hide its vector unit (the same "AMD EPYC" VM type has come with and
# without AVX-512): the widest one the convolutions use is part of the device's name.
isa=""
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then isa=" avx512"; elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then isa=" avx2"; fi
if [ -n "$gpu_name" ]; then device="$gpu_name"; else device="${cpu_model:-cpu} x${cpu_cores}${isa}"; fi
slug=$(printf '%s' "$device" | tr '[:upper:]' '[:lower:]' | sed 's/[^a-z0-9]\+/-/g; s/^-//; s/-$//')
date_utc=$(date -u +%Y-%m-%d)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
torch_version=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "")
torch2_version=""
if [ -n "$TORCH2_PYTHON" ]; then
  torch2_version=$("$TORCH2_PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "")
  [ -n "$torch2_version" ] || notes+=("TORCH2_PYTHON=$TORCH2_PYTHON has no importable torch: its peer runs are skipped")
fi
echo "device: $device; cpu: $cpu_model ($cpu_cores cores); commit $commit; load $load_before"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=$CPU_THREADS

# ---- 1. ops on the CPU ---------------------------------------------------------------------------
say "ops on the CPU: minicnn ($CPU_THREADS threads) vs PyTorch ($CPU_THREADS threads)"
mkdir -p "$tmp/dump"
"$BENCH" --cpu --dump "$tmp/dump" >/dev/null
if [ -n "$torch_version" ]; then
  if ! "$PY" bench/torch_ops.py --data "$tmp/dump" --json "$tmp/torch_ops.json" \
       --threads "$CPU_THREADS" --min-time "$MIN_TIME"; then
    notes+=("PyTorch and minicnn disagreed on some ops (marked NO in the table); their ratios are not shown")
  fi
else
  notes+=("PyTorch not importable with $PY: CPU ops were timed for minicnn only, without validation")
fi
if [ -n "$torch2_version" ]; then
  "$TORCH2_PYTHON" bench/torch_ops.py --data "$tmp/dump" --json "$tmp/torch2_ops.json" \
    --threads "$CPU_THREADS" --min-time "$MIN_TIME" \
    || notes+=("PyTorch $torch2_version and minicnn disagreed on some ops (marked NO)")
fi
rm -rf "$tmp/dump"
"$BENCH" --cpu --min-time "$MIN_TIME" --json "$tmp/cpu_ops.json"

# ---- 1b. the exercise's functions from Python ----------------------------------------------------
say "the exercise's functions from Python: the minicnn module vs PyTorch, same process"
py_ops_args=()
if ls "$BUILD_DIR"/python/minicnn/_minicnn*.so >/dev/null 2>&1; then
  for interp in "$PY" ${torch2_version:+"$TORCH2_PYTHON"}; do
    label=$("$interp" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null) || continue
    "$interp" bench/python_ops.py --module-dir "$BUILD_DIR/python" --threads "$CPU_THREADS" \
      --min-time "$MIN_TIME" --json "$tmp/python_ops_$label.json" \
      && py_ops_args+=("$label=$tmp/python_ops_$label.json") \
      || notes+=("bench/python_ops.py with PyTorch $label failed or disagreed (see its output)")
  done
else
  notes+=("the Python module was not built ($BUILD_DIR/python): no Python-call numbers")
fi

# ---- 2. ops on the GPU ---------------------------------------------------------------------------
say "ops on the GPU: minicnn vs cuDNN"
NVIDIA_TF32_OVERRIDE=0 "$BENCH" --gpu --gpu-reps "$GPU_REPS" --json "$tmp/gpu_ops.json"

# ---- 3. training throughput ----------------------------------------------------------------------
train_args=()
if [ "$train" = 1 ]; then
  say "LeNet-5 training throughput on the CPU (bench/train_cpu_vs_torch)"
  if [ -f bench/train_cpu_vs_torch.sh ]; then
    BUILD_DIR="$BUILD_DIR" PYTHON="$PY" CPU_THREADS="$CPU_THREADS" QUICK="$quick" \
      bash bench/train_cpu_vs_torch.sh --json "$tmp/train_cpu.json" && train_args+=("cpu=$tmp/train_cpu.json") \
      || notes+=("bench/train_cpu_vs_torch.sh failed: no CPU training numbers")
  elif [ -f bench/train_cpu_vs_torch.py ]; then
    qa=()
    [ "$quick" = 1 ] && qa+=(--quick)
    [ -n "$torch2_version" ] && qa+=(--torch-python "$TORCH2_PYTHON")
    for tb in $TRAIN_BATCHES; do
      label=cpu
      [ "$tb" = 256 ] || label=cpu-b$tb
      "$PY" bench/train_cpu_vs_torch.py --minicnn "$MINICNN" --threads "$CPU_THREADS" \
        --batch-size "$tb" --epochs "$TRAIN_EPOCHS" --rounds "$TRAIN_ROUNDS" --no-results \
        --json "$tmp/train_$label.json" \
        "${qa[@]}" && train_args+=("$label=$tmp/train_$label.json") \
        || notes+=("bench/train_cpu_vs_torch.py --batch-size $tb failed: no CPU training numbers for it")
    done
  else
    notes+=("bench/train_cpu_vs_torch.* not present: no CPU training numbers")
  fi

  say "LeNet-5 training throughput on the GPU"
  if [ -n "$gpu_name" ] && [ -x "$MINICNN" ]; then
    NVIDIA_TF32_OVERRIDE=0 "$MINICNN" train --device cuda --batch-size 256 --epochs "$TRAIN_EPOCHS" \
      --validation 0 --json "$tmp/train_gpu_minicnn.json" && train_args+=("gpu-minicnn=$tmp/train_gpu_minicnn.json") \
      || notes+=("minicnn train --device cuda failed: no minicnn GPU training numbers")
    "$PY" bench/train_gpu_torch.py --batch-size 256 --epochs "$TRAIN_EPOCHS" \
      --json "$tmp/train_gpu_torch.json" && train_args+=("gpu-torch=$tmp/train_gpu_torch.json") \
      || notes+=("bench/train_gpu_torch.py failed: no PyTorch GPU training numbers")
  elif [ -z "$gpu_name" ]; then
    echo "skipped: no GPU visible (nvidia-smi -L)"
    notes+=("GPU training skipped: no GPU visible (nvidia-smi -L)")
  else
    echo "skipped: $MINICNN not built"
    notes+=("GPU training skipped: $MINICNN not built")
  fi
fi

# ---- 4. the report -------------------------------------------------------------------------------
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$OUT_DIR"
prefix="$OUT_DIR/$date_utc-$slug"
notes_json=$(printf '%s\n' "${notes[@]+"${notes[@]}"}" | "$PY" -c 'import json,sys; print(json.dumps([l for l in sys.stdin.read().splitlines() if l]))')
DATE="$date_utc" DEVICE="$device" CPU_MODEL="$cpu_model" CPU_CORES="$cpu_cores" GPU="$gpu_name" \
DRIVER="$driver" COMMIT="$commit" CMDLINE="$command_line" LOAD_BEFORE="$load_before" \
LOAD_AFTER="$load_after" TORCH="$torch_version" TORCH2="$torch2_version" NOTES="$notes_json" CPU_THREADS="$CPU_THREADS" \
"$PY" - "$tmp/meta.json" <<'EOF'
import json, os, sys
e = os.environ
meta = {"date": e["DATE"], "device": e["DEVICE"], "cpu_model": e["CPU_MODEL"],
        "cpu_cores": int(e["CPU_CORES"]), "cpu_threads": int(e["CPU_THREADS"]),
        "gpu": e["GPU"] or None, "driver": e["DRIVER"] or None, "commit": e["COMMIT"],
        "command": e["CMDLINE"], "load_before": e["LOAD_BEFORE"], "load_after": e["LOAD_AFTER"],
        "torch_version": e["TORCH"] or None, "torch2_version": e["TORCH2"] or None,
        "notes": json.loads(e["NOTES"])}
with open(sys.argv[1], "w") as f:
    json.dump(meta, f, indent=1)
EOF
opt() { [ -f "$2" ] && printf '%s\n%s\n' "$1" "$2"; return 0; }
mapfile -t report_args < <(opt --cpu-ops "$tmp/cpu_ops.json"; opt --torch-ops "$tmp/torch_ops.json"; opt --torch2-ops "$tmp/torch2_ops.json"; opt --gpu-ops "$tmp/gpu_ops.json")
"$PY" bench/report.py --meta "$tmp/meta.json" "${report_args[@]}" \
  ${py_ops_args[@]+--python-ops "${py_ops_args[@]}"} \
  ${train_args[@]+--train "${train_args[@]}"} --out-prefix "$prefix"
say "done: $prefix.md"
