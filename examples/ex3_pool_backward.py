#!/usr/bin/env python3
"""The exercise's task 3: pool_backward (max, 3x3, stride 3) on ten images and their negatives.

Prints dA_prev as the exercise did. The images' black borders make windows whose maximum is shared
by several pixels (in the inverted channel, whole windows of 1.0): the exercise's rule, minicnn's
default, gives each of them the window's gradient. The count of such windows, and the difference
from the first-maximum rule (PyTorch's, ties="first"), are printed after.
"""
import numpy as np

import minicnn
from exdata import load, parser

args = parser(__doc__).parse_args()

np.random.seed(0)
X_train, _ = load(args)["train"]
_, h, w = X_train.shape
X_train_a = X_train[:10].reshape((-1, h, w, 1)).astype(np.float64)
X_train_b = 1 - X_train_a
X_train_c = np.concatenate((X_train_a, X_train_b), axis=3)
dA = np.random.randn(10, h // 3, w // 3, 2)
dA_prev = minicnn.pool_backward(dA, X_train_c, (3, 3), stride=(3, 3), device=args.device)
print(dA_prev)
print("shape:", dA_prev.shape)

windows = X_train_c[:, :27, :27, :].reshape(10, 9, 3, 9, 3, 2).transpose(0, 1, 3, 5, 2, 4)
maxima = windows.max(axis=(4, 5), keepdims=True)
ties = ((windows == maxima).sum(axis=(4, 5)) > 1).sum()
first = minicnn.pool_backward(dA, X_train_c, (3, 3), stride=(3, 3), ties="first", device=args.device)
print(f"windows with a tied maximum: {ties} of {windows[..., 0, 0].size}; "
      f"cells where the all-ties and first-maximum rules differ: {(dA_prev != first).sum()}")
