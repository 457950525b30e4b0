#!/usr/bin/env bash
# tests/install/run.sh — installs minicnn into a temporary prefix and builds and runs a program
# outside the tree against it, with CMake (find_package(minicnn), minicnn::minicnn) and with
# pkg-config, for the static library of an existing build folder and for a shared library
# (-DBUILD_SHARED_LIBS=ON, built CPU-only here to keep CI short).
#
# Usage: tests/install/run.sh [build folder of the static library, default build]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATIC_BUILD="${1:-$ROOT/build}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

check() {  # $1: build folder, $2: label
    local prefix="$WORK/$2/prefix"
    cmake --install "$1" --prefix "$prefix" >/dev/null
    test -x "$prefix/bin/minicnn" || { echo "install: $2: no bin/minicnn" >&2; exit 1; }
    if ls "$prefix/include/minicnn" | grep -q -e '^context.h$' -e '^gpu_memory.h$'; then
        echo "install: $2: internal cuda/ headers were installed" >&2; exit 1
    fi
    if find "$prefix" -name 'cli.h' -o -name 'libminicnn_cli*' | grep -q .; then
        echo "install: $2: the program's own code (tools/cli.h, minicnn_cli) was installed" >&2; exit 1
    fi
    "$prefix/bin/minicnn" --help >/dev/null
    cmake -S "$ROOT/tests/install" -B "$WORK/$2/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_BUILD_TYPE=Release >"$WORK/$2/configure.log" || { cat "$WORK/$2/configure.log"; exit 1; }
    grep "consumer: minicnn" "$WORK/$2/configure.log"
    cmake --build "$WORK/$2/consumer" >/dev/null
    "$WORK/$2/consumer/consumer"
    # pkg-config: the same program, compiled by hand.
    local pc="$prefix/lib/pkgconfig"
    [ -d "$pc" ] || pc="$(dirname "$(find "$prefix" -name minicnn.pc | head -1)")"
    local flags
    flags=$(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs --static minicnn)
    # shellcheck disable=SC2086
    g++ -std=c++17 "$ROOT/tests/install/consumer.cpp" -o "$WORK/$2/pc-consumer" $flags \
        -Wl,-rpath,"$prefix/lib"
    "$WORK/$2/pc-consumer" >/dev/null
    echo "install: $2: CMake package, pkg-config and the minicnn program work from $prefix"
}

check "$STATIC_BUILD" static
SHARED_BUILD="${MINICNN_SHARED_BUILD_DIR:-$ROOT/build-shared}"
cmake -S "$ROOT" -B "$SHARED_BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DMINICNN_CUDA=OFF \
    -DMINICNN_BUILD_TESTS=OFF -DMINICNN_BUILD_PYTHON=OFF -DMINICNN_BUILD_BENCH=OFF >/dev/null
cmake --build "$SHARED_BUILD" -j"$(nproc)" >/dev/null
check "$SHARED_BUILD" shared
test -n "$(find "$WORK/shared/prefix" -name 'libminicnn.so*' | head -1)" || {
    echo "install: shared: no libminicnn.so installed" >&2; exit 1; }
echo "install: static and shared installs pass"
