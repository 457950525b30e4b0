#!/usr/bin/env bash
# tools/install-deps.sh — installs the Debian packages minicnn needs that are not installed yet.
# Debian packages only (apt-get). The CUDA toolkit is expected at /usr/local/cuda where a GPU build is
# wanted; without it the build is CPU-only. Safe to run again: it installs nothing when all is there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev libopenblas-dev libcli11-dev nlohmann-json3-dev
  openmpi-bin libopenmpi-dev
  python3 python3-dev python3-numpy python3-pybind11 python3-pytest python3-matplotlib python3-torch
  clang libclang-rt-14-dev
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-deps: missing packages (${missing[*]}) and not root; run as root or install sudo" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
