# python/tests/test_vs_torch.py — the four functions against PyTorch (CPU, float64 reference) on random
# shapes: even and odd kernels, strides 1-3, "same" / "valid" / explicit padding, both pool modes, every
# activation, float32 and float64. docs/operations.md's "same" (not TensorFlow's) is emulated with an explicit
# torch.nn.functional.pad. Max-pool backward is compared where PyTorch and the exercise agree (no
# ties), and ties="first" where PyTorch's first-maximum rule applies; the exercise's all-ties rule has
# its own NumPy reference in test_api.py.
import numpy as np
import pytest

import minicnn
from conftest import assert_close, draw_conv_case, draw_pool_case, pads_of, tolerances

torch = pytest.importorskip("torch", reason="PyTorch is not installed (Debian: python3-torch)")
F = torch.nn.functional

DTYPES = [np.float64, np.float32]
ACTIVATIONS = ["linear", "relu", "tanh", "sigmoid", "softmax"]


def t64(x):
    return torch.tensor(np.asarray(x, dtype=np.float64))


def torch_conv(A, W, b, padding, stride, activation="linear", grad=False):
    """Reference Z or A in NHWC (float64); with grad=True also the leaf tensors."""
    m, h, w, c = A.shape
    kh, kw = W.shape[:2]
    ph, pw = pads_of(padding, h, w, kh, kw, *stride)
    a = t64(A).permute(0, 3, 1, 2).contiguous().requires_grad_(grad)
    wt = t64(W).permute(3, 2, 0, 1).contiguous().requires_grad_(grad)
    bt = t64(b).reshape(-1).contiguous().requires_grad_(grad)
    z = F.conv2d(F.pad(a, (pw, pw, ph, ph)), wt, bt, stride=stride).permute(0, 2, 3, 1)
    out = {"linear": lambda t: t, "relu": torch.relu, "tanh": torch.tanh,
           "sigmoid": torch.sigmoid, "softmax": lambda t: torch.softmax(t, dim=-1)}[activation](z)
    return (out, a, wt, bt) if grad else out.detach().numpy()


def conv_inputs(seed, dtype):
    rng, s = draw_conv_case(seed)
    A = rng.standard_normal((s["m"], s["h"], s["w"], s["c_prev"])).astype(dtype)
    W = rng.standard_normal((s["kh"], s["kw"], s["c_prev"], s["c_new"])).astype(dtype)
    b = rng.standard_normal((1, 1, 1, s["c_new"])).astype(dtype)
    return rng, s, A, W, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(24))
def test_conv_forward_matches_torch(seed, dtype):
    rng, s, A, W, b = conv_inputs(seed, dtype)
    activation = ACTIVATIONS[seed % len(ACTIVATIONS)]
    stride = (s["sh"], s["sw"])
    got = minicnn.conv_forward(A, W, b, activation, padding=s["padding"], stride=stride,
                               device="cpu")
    ref = torch_conv(A, W, b, s["padding"], stride, activation)
    assert got.dtype == dtype
    atol, rtol = tolerances(dtype, s["kh"] * s["kw"] * s["c_prev"])
    assert_close(got, ref, atol, rtol, f"conv_forward {s} {activation}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(24))
def test_conv_backward_matches_torch(seed, dtype):
    rng, s, A, W, b = conv_inputs(seed, dtype)
    stride = (s["sh"], s["sw"])
    z, a, wt, bt = torch_conv(A, W, b, s["padding"], stride, grad=True)
    dZ = rng.standard_normal(tuple(z.shape)).astype(dtype)
    z.backward(t64(dZ))
    dA_prev, dW, db = minicnn.conv_backward(dZ, A, W, b, padding=s["padding"], stride=stride,
                                            device="cpu")
    ref_dA = a.grad.permute(0, 2, 3, 1).numpy()
    ref_dW = wt.grad.permute(2, 3, 1, 0).numpy()
    ref_db = bt.grad.numpy().reshape(1, 1, 1, -1)
    for got in (dA_prev, dW, db):
        assert got.dtype == dtype
    out_cells = s["m"] * z.shape[1] * z.shape[2]
    atol, rtol = tolerances(dtype, s["kh"] * s["kw"] * s["c_new"])
    assert_close(dA_prev, ref_dA, atol, rtol, f"dA_prev {s}")
    atol, rtol = tolerances(dtype, out_cells)
    assert_close(dW, ref_dW, atol, rtol, f"dW {s}")
    assert_close(db, ref_db, atol, rtol, f"db {s}")


def torch_pool(A, kernel, stride, mode, grad=False):
    a = t64(A).permute(0, 3, 1, 2).contiguous().requires_grad_(grad)
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    out = pool(a, kernel, stride).permute(0, 2, 3, 1)
    return (out, a) if grad else out.detach().numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("seed", range(16))
def test_pool_forward_and_backward_match_torch(seed, mode, dtype):
    rng, s = draw_pool_case(seed)
    # Continuous random values: no ties, so the exercise's max rule and PyTorch's agree.
    A = rng.standard_normal((s["m"], s["h"], s["w"], s["c"])).astype(dtype)
    kernel, stride = (s["kh"], s["kw"]), (s["sh"], s["sw"])
    got = minicnn.pool_forward(A, kernel, stride, mode, device="cpu")
    out, a = torch_pool(A, kernel, stride, mode, grad=True)
    atol, rtol = tolerances(dtype, s["kh"] * s["kw"])
    assert got.dtype == dtype
    assert_close(got, out.detach().numpy(), atol, rtol, f"pool_forward {mode} {s}")

    dA = rng.standard_normal(tuple(out.shape)).astype(dtype)
    out.backward(t64(dA))
    dA_prev = minicnn.pool_backward(dA, A, kernel, stride, mode, device="cpu")
    assert dA_prev.dtype == dtype
    assert_close(dA_prev, a.grad.permute(0, 2, 3, 1).numpy(), atol, rtol,
                 f"pool_backward {mode} {s}")


@pytest.mark.parametrize("seed", range(8))
def test_max_pool_backward_first_rule_matches_torch_with_ties(seed):
    rng, s = draw_pool_case(seed)
    # Few distinct values (ReLU-like zeros): most windows hold ties.
    A = np.maximum(rng.integers(-3, 3, size=(s["m"], s["h"], s["w"], s["c"])), 0).astype(np.float64)
    kernel, stride = (s["kh"], s["kw"]), (s["sh"], s["sw"])
    out, a = torch_pool(A, kernel, stride, "max", grad=True)
    dA = rng.standard_normal(tuple(out.shape))
    out.backward(t64(dA))
    got = minicnn.pool_backward(dA, A, kernel, stride, "max", ties="first", device="cpu")
    assert_close(got, a.grad.permute(0, 2, 3, 1).numpy(), 1e-12, 1e-12, f"ties=first {s}")


def test_same_with_even_kernel_is_one_larger_and_matches_padded_torch():
    # docs/operations.md: 28 in, kh = 2, stride 1, "same" -> 29 out (not TensorFlow's 28).
    rng = np.random.default_rng(7)
    A = rng.standard_normal((2, 28, 28, 1))
    W = rng.standard_normal((2, 2, 1, 3))
    b = rng.standard_normal((1, 1, 1, 3))
    got = minicnn.conv_forward(A, W, b, "relu", "same", (1, 1), device="cpu")
    assert got.shape == (2, 29, 29, 3)
    assert_close(got, torch_conv(A, W, b, (1, 1), (1, 1), "relu"), 1e-12, 1e-10, "same kh=2")
    # With stride 2 "same" keeps the input's size.
    got = minicnn.conv_forward(A, W, b, "relu", "same", (2, 2), device="cpu")
    assert got.shape == (2, 28, 28, 3)
    assert_close(got, torch_conv(A, W, b, (14, 14), (2, 2), "relu"), 1e-12, 1e-10, "same s=2")


@pytest.mark.skipif(minicnn.cuda_device_count() == 0,
                    reason="no CUDA device visible (" + (minicnn.cuda_unavailable_reason() or "?") + ")")
@pytest.mark.parametrize("seed", range(6))
def test_cuda_matches_torch(seed):
    rng, s, A, W, b = conv_inputs(seed, np.float32)
    stride = (s["sh"], s["sw"])
    z, a, wt, bt = torch_conv(A, W, b, s["padding"], stride, grad=True)
    got = minicnn.conv_forward(A, W, b, "linear", s["padding"], stride, device="cuda")
    atol, rtol = tolerances(np.float32, s["kh"] * s["kw"] * s["c_prev"])
    assert_close(got, z.detach().numpy(), atol, rtol, f"cuda conv_forward {s}")
    dZ = rng.standard_normal(tuple(z.shape)).astype(np.float32)
    z.backward(t64(dZ))
    dA_prev, dW, db = minicnn.conv_backward(dZ, A, W, b, s["padding"], stride, device="cuda")
    atol, rtol = tolerances(np.float32, s["kh"] * s["kw"] * s["c_new"])
    assert_close(dA_prev, a.grad.permute(0, 2, 3, 1).numpy(), atol, rtol, f"cuda dA_prev {s}")
    atol, rtol = tolerances(np.float32, s["m"] * z.shape[1] * z.shape[2])
    assert_close(dW, wt.grad.permute(2, 3, 1, 0).numpy(), atol, rtol, f"cuda dW {s}")
    assert_close(db, bt.grad.numpy().reshape(1, 1, 1, -1), atol, rtol, f"cuda db {s}")
