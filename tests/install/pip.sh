#!/usr/bin/env bash
# tests/install/pip.sh — `pip install .` into a fresh virtual environment (/usr/bin/python3 -m venv
# --system-site-packages: Debian's NumPy, pytest and PyTorch visible), the Python suite run against
# the installed copy (not the build tree: minicnn must import from the venv, with its distribution's
# metadata), then `pip uninstall -y minicnn`, after which no file of the package may be left in the
# venv.
#
# Cheap by design, for CI: a CPU-only build (MINICNN_CUDA=OFF), no build isolation and no network
# (--no-index): scikit-build-core and pip come from the project's venv (tools/install-deps.sh,
# pinned in tools/requirements.txt), made visible to the fresh venv by a .pth file, as are the
# venv's other test packages (onnx, onnxruntime, safetensors); pybind11 is Debian's. pip installs
# into and uninstalls from the fresh venv (the running interpreter's). The CMake build folder
# persists between runs (MINICNN_PIP_BUILD_DIR, default build-pip), so a second run compiles only
# what changed; the first compiles the library and the extension (-j$(nproc)).
#
# Usage: tests/install/pip.sh [pytest arguments, default: the whole python/tests suite]
# Environment: MINICNN_VENV (the project's venv, default <repo>/.venv), MINICNN_PIP_BUILD_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROJECT_VENV="${MINICNN_VENV:-$ROOT/.venv}"
BUILD_DIR="${MINICNN_PIP_BUILD_DIR:-$ROOT/build-pip}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
VENV="$WORK/venv"
PY="$VENV/bin/python"
fail() { echo "pip: $*" >&2; exit 1; }

[ -x "$PROJECT_VENV/bin/python" ] || fail "no project venv at $PROJECT_VENV (bash tools/install-deps.sh)"
# --without-pip saves ensurepip's 12 s: pip itself comes from the project's venv, through the .pth.
/usr/bin/python3 -m venv --without-pip --system-site-packages "$VENV"
site="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
"$PROJECT_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))' \
    >"$site/minicnn_test_project_venv.pth"
"$PY" -c 'import pip, scikit_build_core' 2>/dev/null ||
    fail "pip or scikit-build-core is not in $PROJECT_VENV (bash tools/install-deps.sh)"

start=$(date +%s)
CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$PY" -m pip install -q --disable-pip-version-check \
    --no-build-isolation --no-index \
    --config-settings=cmake.define.MINICNN_CUDA=OFF --config-settings=build-dir="$BUILD_DIR" "$ROOT"
echo "pip: pip install . (CPU only, build folder $BUILD_DIR) took $(( $(date +%s) - start )) s"

# Imported from the venv, outside the source and build trees.
where="$(cd "$WORK" && "$PY" -c 'import minicnn; print(minicnn.__file__, minicnn.__version__)')"
echo "pip: import minicnn -> $where"
case "$where" in "$VENV"/*) ;; *) fail "minicnn was not imported from the venv $VENV";; esac
"$PY" -m pip show -f minicnn >"$WORK/show.txt"
grep -q '^Version: ' "$WORK/show.txt" || fail "pip show minicnn found no distribution"
# The files pip recorded, absolute, to check after the uninstall.
(cd "$WORK" && "$PY" -c '
import importlib.metadata as md
for f in md.distribution("minicnn").files: print(f.locate())') >"$WORK/files.txt"
grep -q '/minicnn/_minicnn\.' "$WORK/files.txt" || fail "the extension is not among the installed files"
grep -q '/minicnn/_minicnn\.pyi$' "$WORK/files.txt" || fail "the type stubs were not installed"

# The suite against the installed copy: run from outside the source tree, without PYTHONPATH;
# test_package.py checks again that minicnn comes from the venv (MINICNN_EXPECT_INSTALLED).
start=$(date +%s)
(cd "$WORK" && env -u PYTHONPATH MINICNN_EXPECT_INSTALLED="$VENV" MINICNN_SOURCE_DIR="$ROOT" \
    "$PY" -m pytest -q -p no:cacheprovider -rs "${@:-$ROOT/python/tests}")
echo "pip: the Python tests against the installed copy took $(( $(date +%s) - start )) s"

"$PY" -m pip uninstall -y -q minicnn
left="$(while read -r f; do [ -e "$f" ] && echo "$f"; done <"$WORK/files.txt"; \
        find "$VENV" -path "$VENV/bin" -prune -o -iname '*minicnn*' ! -name minicnn_test_project_venv.pth -print)"
[ -z "$left" ] || fail "pip uninstall left behind: $left"
rm "$site/minicnn_test_project_venv.pth"  # the import below is about this venv alone
if (cd "$WORK" && "$PY" -c 'import minicnn' 2>/dev/null); then
    fail "minicnn still imports after pip uninstall: $(cd "$WORK" && "$PY" -c 'import minicnn; print(minicnn.__file__)')"
fi
echo "pip: install, tests and uninstall pass (nothing left in the venv)"
