#!/usr/bin/env python3
"""The exercise's task 1: max pooling 2x2, stride 2 on the training images.

Prints A's shape ((50000, 14, 14, 1) on the full set) and saves the first image before and after
pooling, with the average pooling beside it.
"""
import numpy as np

import minicnn
from exdata import load, out_path, parser, save_images

args = parser(__doc__).parse_args()

np.random.seed(0)
X_train, _ = load(args)["train"]
m, h, w = X_train.shape
X_train_c = X_train.reshape((-1, h, w, 1))
A = minicnn.pool_forward(X_train_c, (2, 2), stride=(2, 2), device=args.device)
print(A.shape)
avg = minicnn.pool_forward(X_train_c[:1], (2, 2), stride=(2, 2), mode="avg", device=args.device)
save_images(out_path(args, "ex1_pool_forward.png"), [X_train[0], A[0, :, :, 0], avg[0, :, :, 0]],
            ["X_train[0]", "max 2x2/2", "avg 2x2/2"])
