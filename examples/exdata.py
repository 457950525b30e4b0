"""Data and command-line helpers shared by the examples.

The exercise's demonstrations read MNIST.npz (X_train (50000, 28, 28) in [0, 1], Y_train class
indices, and the same for _valid and _test). Pass its path with --npz to use it; by default the
examples use Fashion-MNIST from /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist),
read by minicnn's IDX reader and split like the exercise: the last 10,000 training images are the
validation set, t10k is the test set.
"""
import argparse
import os
import sys

import numpy as np

try:
    import minicnn
except ImportError as e:  # the usual cause: the module is built but not on the path
    sys.exit(f"cannot import minicnn ({e}); build it and run with PYTHONPATH=<build>/python "
             "(see python/README.md)")

FASHION = "/usr/share/datasets/fashion-mnist"
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
DIGITS = [str(i) for i in range(10)]


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--npz", help="the exercise's MNIST.npz (default: Fashion-MNIST IDX files)")
    p.add_argument("--data", default=FASHION, help="directory of the IDX files (default %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default %(default)s)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"),
                   help="directory for the pictures and logs (default %(default)s)")
    return p


def load(args):
    """{"train": (X, Y), "valid": (X, Y), "test": (X, Y), "classes": names}: X (n, 28, 28)
    float32 in [0, 1], Y (n,) int class indices."""
    if args.npz:
        lib = np.load(args.npz)
        sets = {s: (np.asarray(lib[f"X_{s}"], np.float32), np.asarray(lib[f"Y_{s}"]).astype(np.int32))
                for s in ("train", "valid", "test")}
        sets["classes"] = DIGITS
        return sets
    X, Y = minicnn.load_idx(args.data, "train")
    Xt, Yt = minicnn.load_idx(args.data, "t10k")
    X, Xt = X[..., 0], Xt[..., 0]  # the exercise's (n, 28, 28)
    return {"train": (X[:-10000], Y[:-10000]), "valid": (X[-10000:], Y[-10000:]),
            "test": (Xt, Yt),
            "classes": FASHION_CLASSES if os.path.abspath(args.data) == FASHION else DIGITS}


def out_path(args, name):
    os.makedirs(args.out, exist_ok=True)
    return os.path.join(args.out, name)


def save_images(path, images, titles, cmap="gray"):
    """A row of images with titles, to a PNG (the exercise showed them with plt.show())."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(2.6 * len(images), 2.8))
    for ax, img, title in zip(np.atleast_1d(axes), images, titles):
        ax.imshow(img, cmap=cmap)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
