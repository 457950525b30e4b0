# python/tests/conftest.py — shared helpers for the Python suite: the comparison rule of STYLE.md
# (|got - ref| <= atol + rtol * |ref|, reporting the worst element) and random-shape draws.
import numpy as np
import pytest

try:
    import minicnn  # noqa: F401
except ImportError as e:  # a clear message beats a collection error in every file
    raise pytest.UsageError(
        f"cannot import the minicnn module ({e}); build it and run with "
        "PYTHONPATH=<build>/python, e.g. `ctest --test-dir build -R python`") from e


def assert_close(got, ref, atol, rtol, what=""):
    """|got - ref| <= atol + rtol * |ref| everywhere; on failure name the worst element."""
    got = np.asarray(got)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    if got.size == 0:
        return
    err = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    excess = err - (atol + rtol * np.abs(ref))
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert excess[worst] <= 0, (
        f"{what}: worst element {worst}: got {got[worst]!r}, expected {ref[worst]!r} "
        f"(|diff| {err[worst]:.3g} > atol {atol:.3g} + rtol {rtol:.3g} * |ref|)")


def tolerances(dtype, reduction):
    """atol/rtol for a result summed over `reduction` products, in the given dtype."""
    if np.dtype(dtype) == np.float64:
        return 1e-12 * reduction, 1e-10
    return 2e-6 * reduction, 1e-5


def same_pad(n, k, s):
    """docs/operations.md's 'same' padding for one axis: ceil(((n - 1) * s + k - n) / 2)."""
    return max(0, -(-((n - 1) * s + k - n) // 2))


def pads_of(padding, h, w, kh, kw, sh, sw):
    if padding == "same":
        return same_pad(h, kh, sh), same_pad(w, kw, sw)
    if padding == "valid":
        return 0, 0
    return padding


def draw_conv_case(seed):
    """A random convolution problem: shapes, even and odd kernels, strides, every kind of padding."""
    rng = np.random.default_rng(seed)
    kh, kw = (int(v) for v in rng.integers(1, 6, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    padding = ["same", "valid", "explicit"][seed % 3]
    if padding == "explicit":
        padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    h = int(rng.integers(kh, kh + 9))
    w = int(rng.integers(kw, kw + 9))
    m = int(rng.integers(1, 4))
    c_prev = int(rng.integers(1, 5))
    c_new = int(rng.integers(1, 6))
    return rng, dict(m=m, h=h, w=w, c_prev=c_prev, c_new=c_new, kh=kh, kw=kw, sh=sh, sw=sw,
                     padding=padding)


def draw_pool_case(seed):
    rng = np.random.default_rng(1000 + seed)
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    h = int(rng.integers(kh, kh + 10))
    w = int(rng.integers(kw, kw + 10))
    m = int(rng.integers(1, 4))
    c = int(rng.integers(1, 5))
    return rng, dict(m=m, h=h, w=w, c=c, kh=kh, kw=kw, sh=sh, sw=sw)
