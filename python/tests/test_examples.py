# python/tests/test_examples.py — the examples/ scripts run end to end on a small MNIST.npz in the
# exercise's format (so the --npz path is covered too): each must exit 0 and print what the
# exercise's main printed; plot_training.py must write its PNG.
import os
import subprocess
import sys

import numpy as np
import pytest

from test_model import synthetic

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    arrays = {}
    for name, n, seed in (("train", 320, 10), ("valid", 64, 11), ("test", 64, 12)):
        x, y = synthetic(n, seed)
        arrays[f"X_{name}"], arrays[f"Y_{name}"] = x[..., 0], y.astype(np.int64)
    path = d / "MNIST.npz"
    np.savez(path, **arrays)
    return str(path)


def run(script, *args):
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *args],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert r.returncode == 0, f"{script} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.mark.skipif(not os.path.isdir(EXAMPLES), reason="examples/ not found beside python/")
def test_examples_run(npz, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (python3-matplotlib)")
    common = ["--npz", npz, "--out", str(tmp_path), "--device", "cpu"]
    assert "(320, 26, 26, 2)" in run("ex0_conv_forward.py", *common)
    assert "(320, 14, 14, 1)" in run("ex1_pool_forward.py", *common)
    assert "shapes: (10, 28, 28, 1) (3, 3, 1, 2) (1, 1, 1, 2)" in run("ex2_conv_backward.py", *common)
    assert "shape: (10, 28, 28, 2)" in run("ex3_pool_backward.py", *common)
    out = run("ex4_lenet5_loop.py", *common, "--epochs", "1")
    assert "After 1 epochs:" in out and "Validation Accuracy" in out
    out = run("ex5_lenet5_fit.py", *common, "--epochs", "2")
    assert "Epoch 2/2" in out and "test: loss" in out
    for name in ("ex0_conv_forward.png", "ex1_pool_forward.png", "ex4_history.csv",
                 "ex5_history.csv", "lenet5.ckpt"):
        assert (tmp_path / name).stat().st_size > 0, name
    png = tmp_path / "curves.png"
    run("plot_training.py", *common, "--csv", str(tmp_path / "ex5_history.csv"),
        "--model", str(tmp_path / "lenet5.ckpt"), "--png", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run("plot_training.py", *common, "--csv", str(tmp_path / "ex4_history.csv"))
    assert (tmp_path / "ex4_history.png").stat().st_size > 0
