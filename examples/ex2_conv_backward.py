#!/usr/bin/env python3
"""The exercise's task 2: conv_backward on ten images, 'valid' padding.

Prints (dA_prev, dW, db) as the exercise did, then checks dW against a finite difference of
sum(Z * dZ), the quantity whose gradient conv_backward returns.
"""
import numpy as np

import minicnn
from exdata import load, parser

args = parser(__doc__).parse_args()

np.random.seed(0)
X_train, _ = load(args)["train"]
_, h, w = X_train.shape
X_train_c = X_train[:10].reshape((-1, h, w, 1)).astype(np.float64)
W = np.random.randn(3, 3, 1, 2)
b = np.random.randn(1, 1, 1, 2)
dZ = np.random.randn(10, h - 2, w - 2, 2)
dA_prev, dW, db = minicnn.conv_backward(dZ, X_train_c, W, b, padding="valid", device=args.device)
print((dA_prev, dW, db))
print("shapes:", dA_prev.shape, dW.shape, db.shape)


def objective(W_):
    return np.sum(minicnn.conv_forward(X_train_c, W_, b, None, "valid", device="cpu") * dZ)


eps = 1e-6
for idx in [(0, 0, 0, 0), (1, 2, 0, 1), (2, 1, 0, 0)]:
    Wp, Wm = W.copy(), W.copy()
    Wp[idx] += eps
    Wm[idx] -= eps
    fd = (objective(Wp) - objective(Wm)) / (2 * eps)
    print(f"dW{idx}: conv_backward {dW[idx]:.8f}, finite difference {fd:.8f}")
    assert abs(fd - dW[idx]) <= 1e-5 * max(1.0, abs(fd))
