# python/tests/test_model.py — the Keras-like model API: LeNet-5's architecture and parameter count,
# predict() against the same network run through the functional API with get_weights(), fit()'s
# History and CSV, determinism (with and without CUDA graphs), label forms, save/load and resuming,
# weights round trips, Dropout (deterministic per seed, the identity in predict), the model files
# Keras 3 wrote, and the errors of each entry point. Training runs on a small synthetic
# problem (the class is where a bright square sits) so that the suite stays fast on two CPU cores.
import csv
import os
import signal
import threading

import numpy as np
import pytest

import minicnn
from conftest import assert_close

def synthetic(n, seed):
    """(n, 28, 28, 1) float32 images whose class (0-9) is the position of a bright 6x6 square."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n).astype(np.int32)
    x = (0.1 * rng.random((n, 28, 28, 1))).astype(np.float32)
    for i, c in enumerate(y):
        r, q = divmod(int(c), 5)
        x[i, 2 + 12 * r:8 + 12 * r, 1 + 5 * q:7 + 5 * q, 0] += 0.9
    return x, y


@pytest.fixture(scope="module")
def data():
    return synthetic(256, 0), synthetic(128, 1)


def lenet_by_hand(seed=0):
    m = minicnn.Sequential((28, 28, 1), "lenet5", device="cpu")
    m.conv2d(6, (5, 5), "same", "relu").maxpool2d((2, 2)) \
     .conv2d(16, (5, 5), "valid", "relu").maxpool2d((2, 2)) \
     .flatten().dense(120, "relu").dense(84, "relu").dense(10, "softmax")
    m.init_weights(seed)
    return m


def test_lenet5_architecture():
    m = minicnn.lenet5(seed=0, device="cpu")
    assert m.count_params() == 61706
    assert m.input_shape == (28, 28, 1) and m.output_shape == (10,)
    lines = []
    m.summary(print_fn=lines.append)
    assert "Total params: 61,706" in lines[0]
    shapes = [w.shape for w in m.get_weights()]
    assert shapes == [(5, 5, 1, 6), (6,), (5, 5, 6, 16), (16,), (400, 120), (120,), (120, 84),
                      (84,), (84, 10), (10,)]
    hand = lenet_by_hand(0)
    assert hand.layers == m.layers
    for a, b in zip(hand.get_weights(), m.get_weights()):
        assert np.array_equal(a, b)
    # He normal kernels, truncated at two standard deviations; zero biases.
    w = m.get_weights()
    assert np.all(w[1] == 0) and np.all(w[9] == 0)
    std = np.sqrt(2 / 400)
    assert np.abs(w[4]).max() <= 2 * std + 1e-7 and 0.7 * std < w[4].std() < 1.0 * std


def functional_lenet(x, w):
    """LeNet-5's forward pass through minicnn's functional API and NumPy, from get_weights()."""
    a = minicnn.conv_forward(x, w[0], w[1].reshape(1, 1, 1, -1), "relu", "same", device="cpu")
    a = minicnn.pool_forward(a, (2, 2), (2, 2), device="cpu")
    a = minicnn.conv_forward(a, w[2], w[3].reshape(1, 1, 1, -1), "relu", "valid", device="cpu")
    a = minicnn.pool_forward(a, (2, 2), (2, 2), device="cpu").reshape(len(x), -1)
    a = np.maximum(a @ w[4] + w[5], 0)
    a = np.maximum(a @ w[6] + w[7], 0)
    z = a @ w[8] + w[9]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_predict_matches_the_functional_api(data):
    (x, y), _ = data
    m = minicnn.lenet5(seed=3, device="cpu")
    m.fit(x, y, epochs=1, verbose=0)  # trained weights, not only the initial ones
    p = m.predict(x[:40], batch_size=16)
    assert p.shape == (40, 10) and p.dtype == np.float32
    assert type(p.base).__name__ == "PyCapsule"
    ref = functional_lenet(x[:40].astype(np.float64),
                           [w.astype(np.float64) for w in m.get_weights()])
    assert_close(p, ref, 1e-5, 1e-4, "predict vs functional")
    # (n, 28, 28) images gain their channel axis; float64 is converted.
    assert_close(m.predict(x[:40, :, :, 0].astype(np.float64), batch_size=16), p, 0, 0,
                 "(n, h, w) float64")


def test_fit_history_csv_and_learning(data, tmp_path):
    (x, y), (xv, yv) = data
    m = minicnn.lenet5(seed=0, device="cpu")
    path = tmp_path / "history.csv"
    h = m.fit(x, y, batch_size=32, epochs=3, verbose=0, validation_data=(xv, yv),
              csv_path=str(path))
    assert h.epoch == [0, 1, 2] and m.epochs_done == 3
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds", "images_per_second"):
        assert len(h.history[key]) == 3, key
    assert h.params["batch_size"] == 32 and h.params["steps"] == 8 and h.params["samples"] == 256
    loss = h.history["loss"]
    assert loss[2] < loss[0] and h.history["val_accuracy"][2] > 0.3  # chance is 0.1
    # evaluate() on the validation set gives the last epoch's validation numbers.
    vl, va = m.evaluate(xv, yv)
    assert vl == pytest.approx(h.history["val_loss"][-1], rel=1e-6)
    assert va == pytest.approx(h.history["val_accuracy"][-1], rel=1e-12)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                                    "seconds", "images_per_second"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for r, l, a in zip(rows, loss, h.history["val_accuracy"]):
        assert float(r["loss"]) == pytest.approx(l, rel=1e-7)
        assert float(r["val_accuracy"]) == pytest.approx(a, rel=1e-7)
    # A further fit continues the epochs and appends to the CSV.
    h2 = m.fit(x, y, epochs=1, verbose=0, csv_path=str(path))
    assert h2.epoch == [3] and "val_loss" not in h2.history
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4] and rows[3]["val_loss"] == ""


def test_fit_is_deterministic_and_label_forms_agree(data):
    (x, y), _ = data
    a = minicnn.lenet5(seed=1, device="cpu")
    b = minicnn.lenet5(seed=1, device="cpu")
    ha = a.fit(x, y, epochs=1, verbose=0, seed=5)
    hb = b.fit(x, np.eye(10, dtype=np.float32)[y], epochs=1, verbose=0, seed=5)  # one-hot
    assert ha.history["loss"] == hb.history["loss"]
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
    c = minicnn.lenet5(seed=1, device="cpu")
    hc = c.fit(x, y.astype(np.uint8), epochs=1, verbose=0, seed=6)  # another shuffle
    assert hc.history["loss"] != ha.history["loss"]


def test_fit_with_and_without_cuda_graphs_gives_the_same_weights(data):
    # cuda_graphs=False launches every kernel of a step instead of replaying its CUDA graph: the
    # same result (on a GPU when there is one; on the CPU the keyword is accepted and ignored).
    (x, y), _ = data
    a = minicnn.lenet5(seed=2, device="auto")
    b = minicnn.lenet5(seed=2, device="auto")
    ha = a.fit(x[:72], y[:72], batch_size=32, epochs=1, verbose=0, seed=3)
    hb = b.fit(x[:72], y[:72], batch_size=32, epochs=1, verbose=0, seed=3, cuda_graphs=False)
    assert ha.history["loss"] == hb.history["loss"]
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)


def test_save_load_and_resume(data, tmp_path):
    (x, y), _ = data
    a = minicnn.lenet5(seed=2, device="cpu")
    a.fit(x, y, epochs=1, verbose=0, seed=9)
    path = str(tmp_path / "lenet5.ckpt")
    a.save(path)
    b = minicnn.load_model(path, device="cpu")
    assert b.epochs_done == 1 and b.layers == a.layers
    assert np.array_equal(a.predict(x[:16]), b.predict(x[:16]))
    # Resuming from the checkpoint trains exactly as continuing in memory (Adam state, epoch, seed).
    a.fit(x, y, epochs=1, verbose=0, seed=9)
    b.fit(x, y, epochs=1, verbose=0, seed=9)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
    assert minicnn.Sequential.load(path, "cpu").epochs_done == 1
    with pytest.raises(ValueError, match="no-such-file"):
        minicnn.load_model(str(tmp_path / "no-such-file.ckpt"))


def test_fit_writes_a_checkpoint_after_every_epoch(data, tmp_path):
    (x, y), _ = data
    path = str(tmp_path / "every_epoch.ckpt")
    a = minicnn.lenet5(seed=4, device="cpu")
    seen = []

    class Spy:  # the checkpoint of each epoch is on disk before its line is printed
        def write(self, s):
            if s.startswith("Epoch "):
                seen.append(minicnn.load_model(path, device="cpu").epochs_done)

        def flush(self):
            pass

        def isatty(self):
            return False

    import sys
    saved, sys.stdout = sys.stdout, Spy()
    try:
        a.fit(x, y, epochs=2, verbose=2, seed=3, checkpoint_path=path)
    finally:
        sys.stdout = saved
    assert seen == [1, 2]
    b = minicnn.load_model(path, device="cpu")
    assert b.epochs_done == 2
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)


def test_train_on_batch_lowers_the_loss(data):
    (x, y), _ = data
    m = minicnn.lenet5(seed=4, device="cpu")
    first = m.train_on_batch(x[:64], y[:64])
    for _ in range(15):
        last = m.train_on_batch(x[:64], y[:64])
    assert np.isfinite(first) and last < first


def test_set_weights_round_trip_and_errors(data):
    (x, _), _ = data
    m = minicnn.lenet5(seed=0, device="cpu")
    w = m.get_weights()
    w2 = [np.full_like(a, 0.01 * (i + 1)) for i, a in enumerate(w)]
    m.set_weights(w2)
    for a, b in zip(m.get_weights(), w2):
        assert np.array_equal(a, b)
    p = m.predict(x[:4])  # set_weights reached the engine
    assert_close(p, functional_lenet(x[:4].astype(np.float64), [a.astype(np.float64) for a in w2]),
                 1e-5, 1e-4, "predict after set_weights")
    with pytest.raises(ValueError, match=r"set_weights: array 0 .* must have shape \(5, 5, 1, 6\)"):
        m.set_weights([np.zeros((5, 5, 1, 7))] + w[1:])
    with pytest.raises(ValueError, match="set_weights: the model has 10 weight arrays, got 11"):
        m.set_weights(w + [w[0]])
    with pytest.raises(ValueError, match="set_weights: expected more arrays"):
        m.set_weights(w[:3])
    for a, b in zip(m.get_weights(), w2):  # a failed call changes nothing
        assert np.array_equal(a, b)


def test_data_errors(data):
    (x, y), _ = data
    m = minicnn.lenet5(seed=0, device="cpu")
    with pytest.raises(ValueError, match=r"fit: x must be a float32 .* got dtype uint8 .*/ 255"):
        m.fit((x * 255).astype(np.uint8), y, verbose=0)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 28, 28, 1\).*got \(4, 32, 32, 1\)"):
        m.predict(np.zeros((4, 32, 32, 1), np.float32))
    with pytest.raises(ValueError, match="fit: y holds 10 labels for 256 images"):
        m.fit(x, y[:10], verbose=0)
    with pytest.raises(ValueError, match=r"class indices in \[0, 10\), found values from 0 to 10"):
        m.fit(x, np.where(y == 9, 10, y), verbose=0)
    bad = np.eye(10)[y]
    bad[3, 0] = 0.5
    with pytest.raises(ValueError, match="one-hot y row 3 holds 0.5"):
        m.fit(x, bad, verbose=0)
    with pytest.raises(ValueError, match=r"one-hot y must have shape \(256, 10\)"):
        m.fit(x, np.eye(9)[y % 9], verbose=0)
    with pytest.raises(ValueError, match="integer class indices"):
        m.fit(x, y.astype(np.float32), verbose=0)
    with pytest.raises(ValueError, match="validation_data must be a pair"):
        m.fit(x, y, verbose=0, validation_data=x)
    with pytest.raises(ValueError, match="validation_data needs labels"):
        m.fit(x, y, verbose=0, validation_data=(x, None))
    with pytest.raises(ValueError, match="fit: epochs must be >= 0"):
        m.fit(x, y, epochs=-1, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be > 0"):
        m.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="learning rate|lr"):
        m.fit(x, y, verbose=0, learning_rate=-1.0)


def test_builder_errors(data):
    (x, y), _ = data
    m = minicnn.Sequential((28, 28, 1), device="cpu").conv2d(4, (3, 3), activation="relu")
    with pytest.raises(ValueError, match="conv2d: padding must be"):
        m.conv2d(4, (3, 3), padding="full")
    with pytest.raises(ValueError, match="dense: activation must be one of"):
        m.dense(10, activation="swish")
    m.flatten().dense(10, "linear")
    with pytest.raises(ValueError, match="softmax"):  # cross-entropy needs a softmax output
        m.fit(x, y, verbose=0)
    assert m.predict(x[:2]).shape == (2, 10)
    m.activation("softmax")  # allowed: nothing was trained yet
    assert m.output_shape == (10,) and len(m.layers) == 4
    m.fit(x[:32], y[:32], verbose=0)
    with pytest.raises(ValueError, match="dense: layers cannot be added to a model that has been "
                                         "trained"):
        m.dense(3)
    with pytest.raises(RuntimeError) if minicnn.cuda_device_count() == 0 else _nothing():
        minicnn.lenet5(device="cuda").predict(x[:2])


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_ctrl_c_stops_training():
    x, y = synthetic(2048, 3)
    m = minicnn.lenet5(seed=0, device="cpu")
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            m.fit(x, y, epochs=1000, verbose=0)
    finally:
        timer.cancel()
    assert m.epochs_done < 1000


KERAS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "keras")


def test_model_from_json_keras2_and_keras3(data):
    (x, y), _ = data
    ref = minicnn.lenet5(seed=3, device="cpu")
    for name in ("lenet5_keras2.json", "lenet5_keras3.json"):
        with open(os.path.join(KERAS_DIR, name)) as f:
            m = minicnn.model_from_json(f.read(), seed=3, device="cpu")
        assert isinstance(m, minicnn.Sequential)
        assert m.layers == ref.layers and m.count_params() == 61706
        for a, b in zip(m.get_weights(), ref.get_weights()):
            assert np.array_equal(a, b)
        loss = m.train_on_batch(x[:32], y[:32])
        assert np.isfinite(loss)
    with open(os.path.join(KERAS_DIR, "cifar_keras3.json")) as f:
        c = minicnn.model_from_json(f.read(), device="cpu")
    assert c.input_shape == (32, 32, 3) and c.count_params() == 34522


def test_dropout_trains_and_is_the_identity_in_predict(data):
    (x, y), _ = data
    def build(rate):
        m = minicnn.Sequential((28, 28, 1), "drop", device="cpu")
        m.conv2d(4, (5, 5), "same", "relu").maxpool2d((2, 2)).dropout(0.25).flatten() \
         .dense(32, "relu")
        if rate is not None:
            m.dropout(rate)
        m.dense(10, "softmax")
        m.init_weights(4)
        return m
    a = build(0.5)
    assert a.layers[2] == "Dropout rate=0.25" and a.layers[5] == "Dropout rate=0.5"
    lines = []
    a.summary(print_fn=lines.append)
    assert "dropout_1 (Dropout)" in lines[0]
    # predict: dropout is the identity, so the same weights without the second dropout predict
    # the same (the first one stays: the layers' weights line up).
    plain = build(None)
    assert np.array_equal(a.predict(x[:16]), plain.predict(x[:16]))
    # fit: the same seed drops the same units (the same weights), another seed other units.
    b = build(0.5)
    c = build(0.5)
    ha = a.fit(x, y, epochs=2, verbose=0, seed=7)
    hb = b.fit(x, y, epochs=2, verbose=0, seed=7)
    hc = c.fit(x, y, epochs=2, verbose=0, seed=8)
    assert ha.history["loss"] == hb.history["loss"]
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
    assert hc.history["loss"] != ha.history["loss"]
    assert ha.history["loss"][1] < ha.history["loss"][0]
    with pytest.raises(minicnn.ArgumentError, match=r"rate"):
        build(None).dropout(1.0)


def test_model_from_json_reads_the_files_keras3_wrote():
    with open(os.path.join(KERAS_DIR, "cifar_dropout_keras3.json")) as f:
        c = minicnn.model_from_json(f.read(), device="cpu")
    assert c.input_shape == (32, 32, 3) and c.count_params() == 34522
    assert [s for s in c.layers if s.startswith("Dropout")] == ["Dropout rate=0.25",
                                                                 "Dropout rate=0.5"]
    with open(os.path.join(KERAS_DIR, "lenet5_he_keras3.json")) as f:
        m = minicnn.model_from_json(f.read(), seed=3, device="cpu")
    for a, b in zip(m.get_weights(), minicnn.lenet5(seed=3, device="cpu").get_weights()):
        assert np.array_equal(a, b)


def test_model_from_json_refuses_in_one_line_naming_layer_and_field():
    with open(os.path.join(KERAS_DIR, "lenet5_keras3.json")) as f:
        text = f.read().replace('"groups": 1', '"groups": 2', 1)
    with pytest.raises(minicnn.ArgumentError, match=r"layer 'conv2d' \(Conv2D\): groups: "):
        minicnn.model_from_json(text)
