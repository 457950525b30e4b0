#!/usr/bin/env python3
"""The exercise's task 0: conv_forward on the training images, 'valid' padding, ReLU.

Prints A's shape ((50000, 26, 26, 2) on the full set) and saves the first image and its two feature
maps. As in the exercise, W and b come from np.random.randn (float64), so the computation runs in
float64; --float32 keeps everything float32 (and runs on the GPU under --device auto where there is
one).
"""
import numpy as np

import minicnn
from exdata import load, out_path, parser, save_images

p = parser(__doc__)
p.add_argument("--float32", action="store_true", help="float32 weights (default: float64, as the exercise)")
args = p.parse_args()

np.random.seed(0)
X_train, _ = load(args)["train"]
m, h, w = X_train.shape
X_train_c = X_train.reshape((-1, h, w, 1))
W = np.random.randn(3, 3, 1, 2)
b = np.random.randn(1, 1, 1, 2)
if args.float32:
    W, b = W.astype(np.float32), b.astype(np.float32)
else:
    X_train_c = X_train_c.astype(np.float64)


def relu(Z):
    return np.maximum(Z, 0)


A = minicnn.conv_forward(X_train_c, W, b, relu, padding="valid", device=args.device)
print(A.shape)
# The callable and the built-in activation agree.
assert np.array_equal(A, minicnn.conv_forward(X_train_c, W, b, "relu", "valid", device=args.device))
save_images(out_path(args, "ex0_conv_forward.png"), [X_train[0], A[0, :, :, 0], A[0, :, :, 1]],
            ["X_train[0]", "A[0, :, :, 0]", "A[0, :, :, 1]"])
