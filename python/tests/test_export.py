# python/tests/test_export.py — models that travel (docs/export.md): a trained LeNet-5's
# safetensors file loads into the PyTorch module of docs/export.md with strict=True and predicts
# what minicnn predicts; PyTorch-made weights load into minicnn and predict what PyTorch predicts;
# the ONNX export passes onnx.checker and, run by onnxruntime, predicts what minicnn predicts (with
# any batch size); a Keras model file of other shapes (CIFAR-shaped, and with Dropout layers where
# this checkout has them) does all of that too, and Dropout is the identity in both exports; bad
# files and names are ValueErrors naming the tensor, and the weights stay as they were.
import os

import numpy as np
import pytest

import minicnn
from conftest import assert_close, pads_of

torch = pytest.importorskip("torch", reason="PyTorch is not installed (Debian: python3-torch)")
st_torch = pytest.importorskip("safetensors.torch",
                               reason="safetensors is not installed (tools/requirements.txt)")
nn = torch.nn

FASHION = "/usr/share/datasets/fashion-mnist"
KERAS = os.path.join(os.environ.get("MINICNN_SOURCE_DIR",
                                    os.path.join(os.path.dirname(__file__), "..", "..")),
                     "tests", "data", "keras")
PROB_ATOL = 1e-5


# The module of docs/export.md, as written there.
class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv2d = nn.Conv2d(1, 6, 5, padding=2)    # 'same'
        self.conv2d_1 = nn.Conv2d(6, 16, 5)            # 'valid'
        self.dense = nn.Linear(16 * 5 * 5, 120)
        self.dense_1 = nn.Linear(120, 84)
        self.dense_2 = nn.Linear(84, 10)

    def forward(self, x):                               # x: (n, 1, 28, 28)
        x = nn.functional.max_pool2d(torch.relu(self.conv2d(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2d_1(x)), 2)
        x = torch.flatten(x, 1)                         # (c, h, w) order
        x = torch.relu(self.dense(x))
        x = torch.relu(self.dense_1(x))
        return torch.softmax(self.dense_2(x), dim=1)


def pair(s):
    h, _, w = s.partition("x")
    return int(h), int(w or h)


class FromSpec(nn.Module):
    """A PyTorch module for any minicnn model, built from its spec lines; attributes named as the
    summary names layers (conv2d, conv2d_1, dense, ...)."""

    def __init__(self, model):
        super().__init__()
        shape = list(model.input_shape)
        self.steps = []
        count = {}
        act = {"linear": lambda t: t, "relu": torch.relu, "tanh": torch.tanh,
               "sigmoid": torch.sigmoid, "softmax": lambda t: torch.softmax(t, dim=1)}

        def name(base):
            n = count.get(base, 0)
            count[base] = n + 1
            return base if n == 0 else f"{base}_{n}"

        for spec in model.layers:
            kind, *fields = spec.split()
            kv = dict(f.split("=", 1) for f in fields)
            if kind == "Conv2D":
                (kh, kw), (sh, sw) = pair(kv["kernel"]), pair(kv["stride"])
                h, w, c = shape
                p = kv["padding"]
                ph, pw = pads_of(p if p in ("same", "valid") else pair(p), h, w, kh, kw, sh, sw)
                layer = nn.Conv2d(c, int(kv["filters"]), (kh, kw), (sh, sw), (ph, pw))
                setattr(self, name("conv2d"), layer)
                self.steps += [layer, act[kv["activation"]]]
                shape = [(h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1,
                         int(kv["filters"])]
            elif kind in ("MaxPooling2D", "AveragePooling2D"):
                (kh, kw), (sh, sw) = pair(kv["pool"]), pair(kv["stride"])
                cls = nn.MaxPool2d if kind == "MaxPooling2D" else nn.AvgPool2d
                self.steps.append(cls((kh, kw), (sh, sw)))
                shape = [(shape[0] - kh) // sh + 1, (shape[1] - kw) // sw + 1, shape[2]]
            elif kind == "Flatten":
                self.steps.append(nn.Flatten())
                shape = [int(np.prod(shape))]
            elif kind == "Dense":
                layer = nn.Linear(shape[0], int(kv["units"]))
                setattr(self, name("dense"), layer)
                self.steps += [layer, act[kv["activation"]]]
                shape = [int(kv["units"])]
            elif kind == "Activation":
                self.steps.append(act[kv["activation"]])
            elif kind == "Dropout":
                self.steps.append(lambda t: t)  # inference
            else:
                raise AssertionError(f"no PyTorch layer for {spec!r}")

    def forward(self, x):
        for step in self.steps:
            x = step(x)
        return x


def torch_predict(net, x_nhwc):
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))).numpy()


def expect_same_predictions(got, ref, what):
    assert_close(got, ref, PROB_ATOL, 0, what)
    assert np.array_equal(got.argmax(1), ref.argmax(1)), f"{what}: predicted classes differ"


@pytest.fixture(scope="module")
def fashion():
    if not os.path.isdir(FASHION):
        pytest.skip(f"Fashion-MNIST not installed in {FASHION} (Debian: dataset-fashion-mnist)")
    x, y = minicnn.load_idx(FASHION, "train")
    xt, yt = minicnn.load_idx(FASHION, "t10k")
    return x[:6000], y[:6000], xt[:1000], yt[:1000]


@pytest.fixture(scope="module")
def trained(fashion):
    """LeNet-5 after one epoch on 6,000 Fashion-MNIST images (188 steps)."""
    x, y, xt, yt = fashion
    model = minicnn.lenet5(seed=1, device="cpu")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, seed=1)
    loss, acc = model.evaluate(xt, yt)
    assert acc > 0.6, f"LeNet-5 did not learn: accuracy {acc}"
    return model


def test_trained_lenet5_loads_into_pytorch_strict_and_agrees(trained, fashion, tmp_path):
    xt = fashion[2]
    path = str(tmp_path / "lenet5.safetensors")
    trained.save_weights(path)
    state = st_torch.load_file(path)
    assert set(state) == {
        "conv2d.weight", "conv2d.bias", "conv2d_1.weight", "conv2d_1.bias", "dense.weight",
        "dense.bias", "dense_1.weight", "dense_1.bias", "dense_2.weight", "dense_2.bias"}
    assert state["conv2d.weight"].shape == (6, 1, 5, 5)
    assert state["dense.weight"].shape == (120, 400)
    net = LeNet5()
    net.load_state_dict(state, strict=True)
    expect_same_predictions(torch_predict(net, xt), trained.predict(xt),
                            "PyTorch with minicnn's weights vs minicnn, 1,000 test images")


def test_pytorch_weights_load_into_minicnn_and_agree(fashion, tmp_path):
    xt = fashion[2]
    torch.manual_seed(0)
    net = LeNet5()
    path = str(tmp_path / "torch.safetensors")
    st_torch.save_file(net.state_dict(), path)
    model = minicnn.lenet5(seed=5, device="cpu")
    model.load_weights(path)
    expect_same_predictions(model.predict(xt), torch_predict(net, xt),
                            "minicnn with PyTorch's weights vs PyTorch, 1,000 test images")
    # And back: minicnn writes what it read, tensor for tensor.
    again = str(tmp_path / "again.safetensors")
    model.save_weights(again)
    back = st_torch.load_file(again)
    for k, v in net.state_dict().items():
        assert torch.equal(back[k], v), k


def check_onnx(model, x, path):
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (tools/requirements.txt)")
    ort = pytest.importorskip("onnxruntime",
                              reason="onnxruntime is not installed (tools/requirements.txt)")
    model.export(path)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17
    inp = proto.graph.input[0]
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == list(model.input_shape)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(["output"], {"input": x})[0]
    expect_same_predictions(got, model.predict(x), f"onnxruntime vs minicnn ({path})")
    few = sess.run(["output"], {"input": x[:3]})[0]  # the batch dimension is free
    assert_close(few, got[:3], 1e-6, 0, "onnxruntime, batch of 3")


def test_onnx_export_checks_and_runs_like_minicnn(trained, fashion, tmp_path):
    check_onnx(trained, fashion[2], str(tmp_path / "lenet5.onnx"))


def keras_model(name, seed):
    with open(os.path.join(KERAS, name)) as f:
        return minicnn.model_from_json(f.read(), seed=seed, device="cpu")


# cifar_dropout_keras3.json (with Dropout layers) comes with the Dropout layer.
@pytest.mark.parametrize("name", ["cifar_keras3.json", "cifar_dropout_keras3.json"])
def test_keras_cifar_model_round_trips(name, tmp_path):
    if not os.path.exists(os.path.join(KERAS, name)):
        pytest.skip(f"{name} is not in tests/data/keras/ of this checkout")
    model = keras_model(name, 3)
    assert tuple(model.input_shape) == (32, 32, 3)
    x = np.random.default_rng(0).random((200, 32, 32, 3), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, 200)
    model.fit(x, y, batch_size=20, epochs=1, verbose=0)  # weights away from their initialisation
    # minicnn -> PyTorch
    path = str(tmp_path / "cifar.safetensors")
    model.save_weights(path)
    net = FromSpec(model)
    net.load_state_dict(st_torch.load_file(path), strict=True)
    expect_same_predictions(torch_predict(net, x), model.predict(x), "CIFAR model in PyTorch")
    # PyTorch -> minicnn
    torch.manual_seed(1)
    other = FromSpec(model)
    st_torch.save_file(other.state_dict(), path)
    fresh = keras_model(name, 4)
    fresh.load_weights(path)
    expect_same_predictions(fresh.predict(x), torch_predict(other, x), "PyTorch's CIFAR weights")
    # ONNX
    check_onnx(fresh, x, str(tmp_path / "cifar.onnx"))


def test_dropout_is_the_identity_in_exports(tmp_path):
    if not hasattr(minicnn.Sequential, "dropout"):
        pytest.skip("this build has no Dropout layer (Sequential.dropout)")
    model = minicnn.Sequential((8, 8, 2), device="cpu")
    model.conv2d(4, (3, 3), activation="relu").dropout(0.5).flatten().dense(6).dropout(0.25)
    model.dense(3, activation="softmax")
    model.init_weights(2)
    x = np.random.default_rng(2).random((50, 8, 8, 2), dtype=np.float32)
    path = str(tmp_path / "d.safetensors")
    model.save_weights(path)
    net = FromSpec(model)
    net.load_state_dict(st_torch.load_file(path), strict=True)
    expect_same_predictions(torch_predict(net, x), model.predict(x), "Dropout model in PyTorch")
    check_onnx(model, x, str(tmp_path / "d.onnx"))


def test_bad_files_and_names_are_value_errors_naming_the_tensor(tmp_path):
    model = minicnn.lenet5(seed=1, device="cpu")
    before = [w.copy() for w in model.get_weights()]
    state = LeNet5().state_dict()

    def refused(edit, match):
        s = dict(state)
        edit(s)
        path = str(tmp_path / "bad.safetensors")
        st_torch.save_file(s, path)
        with pytest.raises(ValueError, match=match):
            model.load_weights(path)
        for a, b in zip(model.get_weights(), before):
            assert np.array_equal(a, b), "a refused file changed the weights"

    refused(lambda s: s.pop("dense_1.bias"), "tensor 'dense_1.bias' is missing")
    refused(lambda s: s.update({"conv1.weight": s.pop("conv2d.weight")}),
            "unknown tensor 'conv1.weight'")
    refused(lambda s: s.update({"dense.weight": s["dense.weight"].t().contiguous()}),
            r"'dense.weight' has shape \(400, 120\), expected \(120, 400\)")
    refused(lambda s: s.update({"dense_2.bias": s["dense_2.bias"].double()}),
            "'dense_2.bias' has dtype F64, expected F32")
    trunc = tmp_path / "trunc.safetensors"
    model.save_weights(str(trunc))
    trunc.write_bytes(trunc.read_bytes()[:-10])
    with pytest.raises(ValueError, match="trunc.safetensors"):
        model.load_weights(str(trunc))
    with pytest.raises(ValueError, match="not found"):
        model.load_weights(str(tmp_path / "none.safetensors"))
    with pytest.raises(ValueError, match=r"extension '\.h5'; expected \.safetensors"):
        model.export(str(tmp_path / "m.h5"))
    assert not (tmp_path / "m.h5").exists()
