#!/usr/bin/env bash
# bench/mpi_cpu.sh — data-parallel training on the CPU: `minicnn train` as 1 process against
# `mpirun -np 2 minicnn train`, on the same data with the same options (global batch, epochs,
# seed), in the same run of this script, alternating, REPEATS times each. Prints the training
# throughput of each run (train_images_per_second from the program's JSON: training time only,
# no data loading, validation or test), the median per configuration, the test accuracy (the two
# must agree closely: the same global batches) and the load average before and after.
#
# The cores are shared out, not added: 1 rank gets CPU_THREADS threads, each of 2 ranks
# CPU_THREADS / 2 (OMP_NUM_THREADS); on one machine 2 ranks can only win where one process does
# not keep its threads busy (small batches, the serial parts of a step), and they pay one
# all-reduce of the 61,706-float gradient (247 KB) per step through shared memory.
#
# Usage: bench/mpi_cpu.sh   (env: BUILD_DIR=build DATA=/usr/share/datasets/fashion-mnist
#                            LIMIT=20000 EPOCHS=1 BATCH=64 CPU_THREADS=2 REPEATS=3)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
LIMIT="${LIMIT:-20000}"
EPOCHS="${EPOCHS:-1}"
BATCH="${BATCH:-64}"
CPU_THREADS="${CPU_THREADS:-2}"
REPEATS="${REPEATS:-3}"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca btl self,vader)
BIN="$BUILD_DIR/minicnn"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

[ -x "$BIN" ] || { echo "mpi_cpu: no $BIN (build first)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "mpi_cpu: no mpirun (Debian: openmpi-bin)" >&2; exit 1; }
args=(train --data "$DATA" --device cpu --epochs "$EPOCHS" --batch-size "$BATCH" --limit "$LIMIT"
      --validation 0 --seed 1)

field() {  # $1: JSON file, $2: key
    /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"
}

echo "mpi_cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores;" \
     "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mpi_cpu: minicnn ${args[*]}"
printf '%-6s %-14s %-8s %12s %14s\n' ranks threads/rank repeat "img/s" test_accuracy
for i in $(seq 1 "$REPEATS"); do
    OMP_NUM_THREADS="$CPU_THREADS" "$BIN" "${args[@]}" --json "$WORK/1-$i.json" >/dev/null
    printf '%-6s %-14s %-8s %12.0f %14s\n' 1 "$CPU_THREADS" "$i" \
        "$(field "$WORK/1-$i.json" train_images_per_second)" "$(field "$WORK/1-$i.json" test_accuracy)"
    "${MPIRUN[@]}" -np 2 -x OMP_NUM_THREADS=$(( CPU_THREADS / 2 > 0 ? CPU_THREADS / 2 : 1 )) \
        "$BIN" "${args[@]}" --json "$WORK/2-$i.json" >/dev/null
    printf '%-6s %-14s %-8s %12.0f %14s\n' 2 $(( CPU_THREADS / 2 > 0 ? CPU_THREADS / 2 : 1 )) "$i" \
        "$(field "$WORK/2-$i.json" train_images_per_second)" "$(field "$WORK/2-$i.json" test_accuracy)"
done
for r in 1 2; do
    /usr/bin/python3 - "$r" "$WORK"/"$r"-*.json <<'PY'
import json, statistics, sys
v = [json.load(open(f))["train_images_per_second"] for f in sys.argv[2:]]
print(f"median, {sys.argv[1]} rank(s): {statistics.median(v):.0f} img/s (min {min(v):.0f}, max {max(v):.0f})")
PY
done
echo "mpi_cpu: load after: $(cut -d' ' -f1-3 /proc/loadavg)"
