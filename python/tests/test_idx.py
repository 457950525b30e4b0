# python/tests/test_idx.py — the IDX readers: Fashion-MNIST's test set through load_idx (scaled
# float32 images without a copy, int32 labels) agrees with the raw uint8 readers; bad files are
# ValueErrors that name the problem.
import os

import numpy as np
import pytest

import minicnn
from conftest import assert_close

FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(FASHION), reason=f"Fashion-MNIST not installed in {FASHION}")
def test_load_idx_fashion_mnist():
    x, y = minicnn.load_idx(FASHION, "t10k")
    assert x.shape == (10000, 28, 28, 1) and x.dtype == np.float32
    assert y.shape == (10000,) and y.dtype == np.int32
    assert x.min() == 0.0 and x.max() == 1.0 and set(np.unique(y)) == set(range(10))
    assert type(x.base).__name__ == "PyCapsule"
    raw = minicnn.read_idx_images(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz"))
    assert raw.dtype == np.uint8 and raw.shape == (10000, 28, 28)
    assert_close(x[..., 0], raw / 255.0, 1e-7, 0, "scaled pixels")
    labels = minicnn.read_idx_labels(os.path.join(FASHION, "t10k-labels-idx1-ubyte.gz"))
    assert np.array_equal(labels, y)


def test_load_idx_errors(tmp_path):
    with pytest.raises(ValueError, match="no-such-dir"):
        minicnn.load_idx(str(tmp_path / "no-such-dir"))
    bad = tmp_path / "t10k-labels-idx1-ubyte"
    bad.write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic"):
        minicnn.read_idx_labels(str(bad))
