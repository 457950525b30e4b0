# python/tests/test_api.py — the module's contract without PyTorch: the exercise's signatures and
# defaults, its all-ties max-pool rule (against a NumPy transcription of the exercise's loop), dtype
# rules, error mapping (ArgumentError -> ValueError, DeviceError -> RuntimeError), the callable
# activation, and the no-copy promises (outputs own their buffer through a capsule; C-contiguous
# inputs of the computation dtype are read in place).
import inspect

import numpy as np
import pytest

import minicnn
from conftest import assert_close, draw_pool_case


def rand(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---- the exercise's semantics -----------------------------------------------------------------------

def exercise_pool_backward(dA, A_prev, kernel_shape, stride, mode):
    """The exercise's loop: max mode sends the window's gradient to every cell equal to its max."""
    kh, kw = kernel_shape
    sh, sw = stride
    dA_prev = np.zeros_like(A_prev)
    for i in range(dA.shape[1]):
        for j in range(dA.shape[2]):
            win = A_prev[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
            g = dA[:, i, j, :][:, None, None, :]
            if mode == "max":
                mask = win == win.max(axis=(1, 2), keepdims=True)
                dA_prev[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :] += mask * g
            else:
                dA_prev[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :] += g / (kh * kw)
    return dA_prev


@pytest.mark.parametrize("seed", range(10))
def test_max_pool_backward_gives_every_tie_the_gradient(seed):
    rng, s = draw_pool_case(seed)
    # ReLU-like data: many zeros, so most windows hold several maxima.
    A = np.maximum(rng.integers(-4, 3, size=(s["m"], s["h"], s["w"], s["c"])), 0).astype(np.float64)
    kernel, stride = (s["kh"], s["kw"]), (s["sh"], s["sw"])
    A_out = minicnn.pool_forward(A, kernel, stride)
    dA = rng.standard_normal(A_out.shape)
    got = minicnn.pool_backward(dA, A, kernel, stride)  # defaults: mode="max", ties="all"
    ref = exercise_pool_backward(dA, A, kernel, stride, "max")
    assert_close(got, ref, 1e-12, 1e-12, f"all-ties {s}")
    if s["kh"] * s["kw"] > 1:  # the tie rule must matter in this data, else the test proves nothing
        first = minicnn.pool_backward(dA, A, kernel, stride, ties="first")
        assert not np.allclose(first, got)


def test_all_zero_window_sends_gradient_to_every_cell():
    A = np.zeros((1, 2, 2, 1))
    dA = np.full((1, 1, 1, 1), 3.0)
    assert np.array_equal(minicnn.pool_backward(dA, A, (2, 2), (2, 2)), np.full((1, 2, 2, 1), 3.0))
    first = minicnn.pool_backward(dA, A, (2, 2), (2, 2), ties="first")
    assert np.array_equal(first.ravel(), [3.0, 0.0, 0.0, 0.0])


def test_avg_pool_backward_matches_exercise_loop(rng):
    A = rand(rng, 2, 9, 7, 3)
    dA = rand(rng, 2, 3, 3, 3)
    got = minicnn.pool_backward(dA, A, (3, 2), (3, 2), mode="avg")
    assert_close(got, exercise_pool_backward(dA, A, (3, 2), (3, 2), "avg"), 1e-12, 1e-12, "avg")


def test_exercise_shapes(rng):
    # The exercise's demonstrations: MNIST-sized inputs.
    A = rand(rng, 5, 28, 28, 1)
    W = rand(rng, 3, 3, 1, 2)
    b = rand(rng, 1, 1, 1, 2)
    assert minicnn.conv_forward(A, W, b, "relu", padding="valid").shape == (5, 26, 26, 2)
    assert minicnn.conv_forward(A, W, b, "relu").shape == (5, 28, 28, 2)  # default "same"
    assert minicnn.conv_forward(A, W, b, "relu", padding=(2, 4)).shape == (5, 30, 34, 2)
    assert minicnn.conv_forward(A, W, b, "relu", "valid", (2, 2)).shape == (5, 13, 13, 2)
    assert minicnn.pool_forward(A, (2, 2), (2, 2)).shape == (5, 14, 14, 1)
    # 28 wide, kernel 3, stride 3: 9 windows; the uncovered last row/column get zero gradient.
    P = minicnn.pool_forward(A, (3, 3), (3, 3), "avg")
    assert P.shape == (5, 9, 9, 1)
    dP = minicnn.pool_backward(np.ones_like(P), A, (3, 3), (3, 3), "avg")
    assert np.all(dP[:, 27, :, :] == 0) and np.all(dP[:, :, 27, :] == 0)
    assert np.allclose(dP[:, :27, :27, :], 1 / 9)


def test_conv_backward_with_1x1_same_kernel(rng):
    # The exercise crashed here ("same" gives zero padding); minicnn returns the plain gradient.
    A = rand(rng, 2, 5, 6, 3)
    W = rand(rng, 1, 1, 3, 4)
    b = rand(rng, 1, 1, 1, 4)
    dZ = rand(rng, 2, 5, 6, 4)
    dA_prev, dW, db = minicnn.conv_backward(dZ, A, W, b)
    assert_close(dA_prev, np.einsum("nijk,ck->nijc", dZ, W[0, 0]), 1e-12, 1e-12, "dA_prev")
    assert_close(dW[0, 0], np.einsum("nijc,nijk->ck", A, dZ), 1e-12, 1e-12, "dW")
    assert_close(db, dZ.sum(axis=(0, 1, 2), keepdims=True), 1e-12, 1e-12, "db")


def test_signatures_and_defaults():
    # pybind11 functions carry their signature in the docstring's first line.
    def first_line(f):
        return f.__doc__.splitlines()[0].split(" -> ")[0]
    assert "conv_forward(A_prev: object, W: object, b: object, activation: object, " \
           "padding: object = 'same', stride: object = (1, 1), *, device: object = 'auto')" \
        == first_line(minicnn.conv_forward)
    assert "pool_forward(A_prev: object, kernel_shape: object, stride: object = (1, 1), " \
           "mode: object = 'max', *, device: object = 'auto')" == first_line(minicnn.pool_forward)
    assert "conv_backward(dZ: object, A_prev: object, W: object, b: object, " \
           "padding: object = 'same', stride: object = (1, 1), *, device: object = 'auto')" \
        == first_line(minicnn.conv_backward)
    assert "pool_backward(dA: object, A_prev: object, kernel_shape: object, " \
           "stride: object = (1, 1), mode: object = 'max', *, ties: object = 'all', " \
           "device: object = 'auto')" == first_line(minicnn.pool_backward)
    assert inspect.isbuiltin(minicnn.conv_forward)


# ---- activation -------------------------------------------------------------------------------------

def test_callable_activation_is_applied_to_z(rng):
    A, W, b = rand(rng, 2, 7, 6, 3), rand(rng, 3, 2, 3, 4), rand(rng, 1, 1, 1, 4)
    Z = minicnn.conv_forward(A, W, b, None, "valid")
    assert_close(Z, minicnn.conv_forward(A, W, b, "linear", "valid"), 0, 0, "None == linear")
    seen = []

    def act(z):
        seen.append(z.copy())
        return ("result", z.shape)

    assert minicnn.conv_forward(A, W, b, act, "valid") == ("result", Z.shape)
    assert len(seen) == 1 and np.array_equal(seen[0], Z)
    assert_close(minicnn.conv_forward(A, W, b, np.tanh, "valid"),
                 minicnn.conv_forward(A, W, b, "tanh", "valid"), 1e-15, 1e-14, "np.tanh")
    relu = lambda z: np.maximum(z, 0)  # noqa: E731 — the exercise passes lambdas like this
    assert_close(minicnn.conv_forward(A, W, b, relu, "valid"),
                 minicnn.conv_forward(A, W, b, "relu", "valid"), 0, 0, "lambda relu")


def test_callable_activation_exception_propagates(rng):
    A, W, b = rand(rng, 1, 4, 4, 1), rand(rng, 2, 2, 1, 1), rand(rng, 1, 1, 1, 1)

    def boom(z):
        raise KeyError("from the activation")

    with pytest.raises(KeyError, match="from the activation"):
        minicnn.conv_forward(A, W, b, boom)


def test_softmax_is_over_channels(rng):
    A, W, b = rand(rng, 2, 5, 5, 3), rand(rng, 3, 3, 3, 6), rand(rng, 1, 1, 1, 6)
    S = minicnn.conv_forward(A, W, b, "softmax")
    assert_close(S.sum(axis=-1), np.ones(S.shape[:3]), 1e-12, 0, "softmax sums")


# ---- dtypes -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(rng, dtype):
    A, W, b = rand(rng, 2, 8, 8, 3, dtype=dtype), rand(rng, 3, 3, 3, 2, dtype=dtype), \
        rand(rng, 1, 1, 1, 2, dtype=dtype)
    Z = minicnn.conv_forward(A, W, b, "relu", device="cpu")
    assert Z.dtype == dtype
    assert all(g.dtype == dtype for g in minicnn.conv_backward(Z, A, W, b, device="cpu"))
    P = minicnn.pool_forward(A, (2, 2), (2, 2), device="cpu")
    assert P.dtype == dtype
    assert minicnn.pool_backward(P, A, (2, 2), (2, 2), device="cpu").dtype == dtype


def test_float32_agrees_with_float64(rng):
    A, W, b = rand(rng, 2, 10, 9, 3), rand(rng, 4, 3, 3, 5), rand(rng, 1, 1, 1, 5)
    z64 = minicnn.conv_forward(A, W, b, "tanh", "same", (2, 1))
    z32 = minicnn.conv_forward(A.astype(np.float32), W.astype(np.float32), b.astype(np.float32),
                               "tanh", "same", (2, 1))
    assert_close(z32, z64, 1e-5, 1e-5, "float32 vs float64")


def test_mixed_float_dtypes_promote_to_float64(rng):
    A = rand(rng, 1, 6, 6, 2, dtype=np.float32)
    W, b = rand(rng, 3, 3, 2, 3), rand(rng, 1, 1, 1, 3)
    Z = minicnn.conv_forward(A, W, b, "linear")
    assert Z.dtype == np.float64
    assert_close(Z, minicnn.conv_forward(A.astype(np.float64), W, b, "linear"), 0, 0, "promotion")


@pytest.mark.parametrize("bad", [np.int64, np.int32, np.uint8, np.bool_, np.float16, np.complex128])
def test_non_float_dtypes_are_value_errors(rng, bad):
    A = np.ones((1, 4, 4, 1), dtype=bad)
    W, b = rand(rng, 2, 2, 1, 1), rand(rng, 1, 1, 1, 1)
    with pytest.raises(ValueError, match=r"conv_forward: A_prev must be a float32 or float64 "
                                         r"array, got dtype " + np.dtype(bad).name):
        minicnn.conv_forward(A, W, b, "relu")
    with pytest.raises(ValueError, match="pool_forward: A_prev must be a float32 or float64"):
        minicnn.pool_forward(A, (2, 2))


def test_lists_are_accepted():
    A = [[[[1.0], [2.0]], [[3.0], [4.0]]]]  # (1, 2, 2, 1), float64 once converted
    out = minicnn.pool_forward(A, (2, 2), mode="avg")
    assert out.dtype == np.float64 and out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == 2.5


# ---- no copies --------------------------------------------------------------------------------------

def assert_owns_capsule(arr):
    # Handed over from a minicnn Tensor: NumPy does not own the data, a capsule does.
    assert type(arr.base).__name__ == "PyCapsule", type(arr.base)
    assert not arr.flags.owndata
    assert arr.flags.c_contiguous and arr.flags.writeable


def test_outputs_are_not_copied(rng):
    A, W, b = rand(rng, 2, 6, 6, 2), rand(rng, 3, 3, 2, 3), rand(rng, 1, 1, 1, 3)
    Z = minicnn.conv_forward(A, W, b, "relu")
    assert_owns_capsule(Z)
    for g in minicnn.conv_backward(Z, A, W, b):
        assert_owns_capsule(g)
    P = minicnn.pool_forward(A, (2, 2), (2, 2))
    assert_owns_capsule(P)
    assert_owns_capsule(minicnn.pool_backward(P, A, (2, 2), (2, 2)))
    # The buffer outlives every other reference to the result's owner.
    view = Z[1]
    expected = view.copy()
    del Z
    assert np.array_equal(view, expected)


def test_contiguous_inputs_are_not_copied(rng):
    A, W, b = rand(rng, 2, 6, 6, 2), rand(rng, 3, 3, 2, 3), rand(rng, 1, 1, 1, 3)
    before = minicnn._input_copies()
    Z = minicnn.conv_forward(A, W, b, "relu")
    minicnn.conv_backward(Z, A, W, b)
    P = minicnn.pool_forward(A, (2, 2), (2, 2))
    minicnn.pool_backward(P, A, (2, 2), (2, 2))
    assert minicnn._input_copies() == before


@pytest.mark.parametrize("make", [
    lambda a: a[:, ::2],                                   # strided view
    lambda a: np.asfortranarray(a),                        # Fortran order
    lambda a: a.astype(np.float32),                        # dtype differs from W's float64
    lambda a: a.astype(">f8"),                             # big-endian
], ids=["strided", "fortran", "promoted", "big-endian"])
def test_other_inputs_are_copied_once_and_give_the_same_result(rng, make):
    A, W, b = rand(rng, 2, 8, 6, 2), rand(rng, 3, 3, 2, 3), rand(rng, 1, 1, 1, 3)
    odd = make(A)
    ref = minicnn.conv_forward(np.ascontiguousarray(odd, dtype=np.float64), W, b, "relu")
    before = minicnn._input_copies()
    got = minicnn.conv_forward(odd, W, b, "relu")
    assert minicnn._input_copies() == before + 1
    assert got.dtype == np.float64
    assert_close(got, ref, 0, 0, "converted input")


def test_inputs_are_not_modified(rng):
    A, W, b = rand(rng, 2, 6, 6, 2), rand(rng, 3, 3, 2, 3), rand(rng, 1, 1, 1, 3)
    dZ = rand(rng, 2, 6, 6, 3)
    saved = [x.copy() for x in (A, W, b, dZ)]
    minicnn.conv_forward(A, W, b, "relu")
    minicnn.conv_backward(dZ, A, W, b)
    minicnn.pool_backward(minicnn.pool_forward(A, (2, 2)), A, (2, 2))
    for x, y in zip((A, W, b, dZ), saved):
        assert np.array_equal(x, y)


# ---- errors -----------------------------------------------------------------------------------------

def test_exception_classes():
    assert issubclass(minicnn.ArgumentError, ValueError)
    assert issubclass(minicnn.DeviceError, RuntimeError)


@pytest.mark.parametrize("kwargs, message", [
    (dict(padding="full"), r"conv_forward: padding must be .*got \"full\""),
    (dict(padding=(-1, 0)), r"conv_forward: padding .*non-negative.*\(-1, 0\)"),
    (dict(padding=(1,)), r"conv_forward: padding \(ph, pw\) must be a pair of integers, got \(1,\)"),
    (dict(padding=(1.5, 1)), r"conv_forward: padding \(ph, pw\) must be a pair of integers"),
    (dict(padding=3), r"conv_forward: padding must be \"same\", \"valid\" or a pair"),
    (dict(stride=(0, 1)), r"conv_forward: stride must be positive, got \(0, 1\)"),
    (dict(stride=2), r"conv_forward: stride \(sh, sw\) must be a pair of integers, got 2"),
    (dict(stride=(1, 2, 3)), r"conv_forward: stride \(sh, sw\) must be a pair of integers"),
    (dict(activation="swish"), r"conv_forward: activation must be one of .*got \"swish\""),
    (dict(activation=3), r"conv_forward: activation must be .* or a callable, got 3"),
    (dict(device="tpu"), r"conv_forward: device must be .*got \"tpu\""),
    (dict(device=0), r"conv_forward: device .* must be a string, got 0"),
])
def test_bad_arguments_are_value_errors(rng, kwargs, message):
    A, W, b = rand(rng, 1, 6, 6, 2), rand(rng, 3, 3, 2, 3), rand(rng, 1, 1, 1, 3)
    args = dict(activation="relu") | kwargs
    with pytest.raises(ValueError, match=message):
        minicnn.conv_forward(A, W, b, **args)


def test_shape_errors_name_what_was_found(rng):
    A, W, b = rand(rng, 1, 6, 6, 2), rand(rng, 3, 3, 4, 3), rand(rng, 1, 1, 1, 3)
    with pytest.raises(minicnn.ArgumentError, match="conv_forward") as e:
        minicnn.conv_forward(A, W, b, "relu")  # 2 channels in, W expects 4
    assert "2" in str(e.value) and "4" in str(e.value)
    with pytest.raises(ValueError, match="conv_forward"):
        minicnn.conv_forward(rand(rng, 6, 6, 2), rand(rng, 3, 3, 2, 3), b, "relu")  # rank 3
    with pytest.raises(ValueError, match="conv_forward"):  # kernel larger than the input
        minicnn.conv_forward(rand(rng, 1, 2, 2, 2), rand(rng, 3, 3, 2, 3), b, "relu", "valid")
    with pytest.raises(ValueError, match="pool_forward"):
        minicnn.pool_forward(rand(rng, 1, 2, 2, 1), (3, 3))
    with pytest.raises(ValueError, match=r"pool_forward: mode .*\"median\""):
        minicnn.pool_forward(rand(rng, 1, 4, 4, 1), (2, 2), mode="median")
    with pytest.raises(ValueError, match=r"pool_forward: kernel_shape \(kh, kw\) must be a pair"):
        minicnn.pool_forward(rand(rng, 1, 4, 4, 1), 2)
    with pytest.raises(ValueError, match=r"pool_backward: ties must be \"all\".*got \"some\""):
        minicnn.pool_backward(rand(rng, 1, 2, 2, 1), rand(rng, 1, 4, 4, 1), (2, 2), (2, 2),
                              ties="some")
    with pytest.raises(ValueError, match="conv_backward"):  # dZ of the wrong shape
        minicnn.conv_backward(rand(rng, 1, 5, 5, 3), A, rand(rng, 3, 3, 2, 3), b)
    with pytest.raises(ValueError, match="pool_backward"):
        minicnn.pool_backward(rand(rng, 1, 3, 3, 1), rand(rng, 1, 4, 4, 1), (2, 2), (2, 2))


def test_non_arrays_are_value_errors(rng):
    with pytest.raises(ValueError, match="pool_forward: A_prev must be a float32 or float64"):
        minicnn.pool_forward("not an array", (2, 2))
    with pytest.raises(ValueError, match="pool_forward: A_prev"):
        minicnn.pool_forward(None, (2, 2))


@pytest.mark.skipif(minicnn.cuda_device_count() > 0, reason="a CUDA device is visible here")
def test_cuda_without_a_device_is_a_runtime_error(rng):
    A, W, b = (rand(rng, 1, 6, 6, 2, dtype=np.float32), rand(rng, 3, 3, 2, 3, dtype=np.float32),
               rand(rng, 1, 1, 1, 3, dtype=np.float32))
    reason = minicnn.cuda_unavailable_reason()
    assert reason
    with pytest.raises(RuntimeError) as e:
        minicnn.conv_forward(A, W, b, "relu", device="cuda")
    assert isinstance(e.value, minicnn.DeviceError) and not isinstance(e.value, ValueError)
    assert reason in str(e.value)
    # "auto" falls back to the CPU without complaint.
    assert minicnn.conv_forward(A, W, b, "relu", device="auto").shape == (1, 6, 6, 3)


@pytest.mark.skipif(minicnn.cuda_device_count() == 0, reason="no CUDA device visible")
def test_cuda_keeps_float32_and_rejects_float64(rng):
    A, W, b = rand(rng, 2, 9, 9, 2), rand(rng, 3, 3, 2, 3), rand(rng, 1, 1, 1, 3)
    f = np.float32
    gpu = minicnn.conv_forward(A.astype(f), W.astype(f), b.astype(f), "relu", device="cuda")
    cpu = minicnn.conv_forward(A.astype(f), W.astype(f), b.astype(f), "relu", device="cpu")
    assert gpu.dtype == f
    assert_owns_capsule(gpu)
    assert_close(gpu, cpu, 1e-5, 1e-5, "cuda vs cpu")
    with pytest.raises(ValueError, match="float32"):
        minicnn.conv_forward(A, W, b, "relu", device="cuda")
