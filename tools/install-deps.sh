#!/usr/bin/env bash
# tools/install-deps.sh — installs what minicnn needs that is not installed yet:
#  1. Debian packages (apt-get);
#  2. the project's virtual environment .venv (/usr/bin/python3 -m venv --system-site-packages, so that
#     Debian's NumPy, pybind11, pytest and PyTorch stay visible) with the PyPI packages of
#     tools/requirements.txt, which Debian lacks.
# The CUDA toolkit is expected at /usr/local/cuda where a GPU build is wanted; without it the build is
# CPU-only. Safe to run again: it installs nothing when all is there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev libopenblas-dev libcli11-dev nlohmann-json3-dev
  openmpi-bin libopenmpi-dev
  python3 python3-dev python3-venv python3-numpy python3-pybind11 python3-pytest python3-matplotlib python3-torch
  clang libclang-rt-14-dev
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

install_venv() {
  local venv="$ROOT/.venv" req="$ROOT/tools/requirements.txt"
  if [ ! -x "$venv/bin/python" ]; then
    echo "install-deps: creating the virtual environment $venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
  fi
  # A stamp holding the requirements' checksum: pip runs only when they changed.
  local sum; sum="$(sha256sum "$req" | cut -d' ' -f1)"
  if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$sum" ]; then
    echo "install-deps: installing tools/requirements.txt into $venv (PyPI)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    echo "$sum" >"$venv/.requirements.sha256"
  else
    echo "install-deps: $venv has every package of tools/requirements.txt"
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages are installed"
  install_venv
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
install_venv
