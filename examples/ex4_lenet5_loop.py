#!/usr/bin/env python3
"""The exercise's task 4: LeNet-5 built layer by layer and trained by a hand-written loop.

The exercise built the network in TensorFlow 1 and ran the loop itself: shuffle each epoch, Adam on
batches of 32, the cost every 100 steps, and training and validation cost and accuracy after each
epoch. Here the layers are minicnn.Sequential's, each step is one train_on_batch() (Adam, lr 0.001,
categorical cross-entropy on the softmax), and the epoch's numbers come from evaluate(). Writes
out/ex4_history.csv (epoch,loss,accuracy,val_loss,val_accuracy,seconds: the columns of minicnn's
--metrics logs).
"""
import csv
import time

import numpy as np

import minicnn
from exdata import load, out_path, parser

p = parser(__doc__)
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--train-size", type=int, default=0, help="use the first N training images (0: all)")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()

data = load(args)
X_train, Y_train = data["train"]
X_valid, Y_valid = data["valid"]
if args.train_size:
    X_train, Y_train = X_train[:args.train_size], Y_train[:args.train_size]
X_train_c = X_train[..., np.newaxis]
X_valid_c = X_valid[..., np.newaxis]

model = minicnn.Sequential((28, 28, 1), "lenet5", device=args.device)
model.conv2d(6, (5, 5), padding="same", activation="relu")     # C1: 1@28x28 -> 6@28x28
model.maxpool2d((2, 2), strides=(2, 2))                         # S2: 6@28x28 -> 6@14x14
model.conv2d(16, (5, 5), padding="valid", activation="relu")   # C3: 6@14x14 -> 16@10x10
model.maxpool2d((2, 2), strides=(2, 2))                         # S4: 16@10x10 -> 16@5x5
model.flatten()                                                 # 400
model.dense(120, activation="relu")                             # F5
model.dense(84, activation="relu")                              # F6
model.dense(10, activation="softmax")                           # output
model.init_weights(args.seed)                                   # He normal, zero biases
model.summary()

rng = np.random.default_rng(args.seed)
rows = []
for epoch in range(args.epochs + 1):
    cost, acc = model.evaluate(X_train_c, Y_train)
    v_cost, v_acc = model.evaluate(X_valid_c, Y_valid)
    print(f"After {epoch} epochs:")
    print(f"\tTraining Cost: {cost}\n\tTraining Accuracy: {acc}")
    print(f"\tValidation Cost: {v_cost}\n\tValidation Accuracy: {v_acc}")
    if epoch > 0:  # the exercise logged the whole training set after each epoch; so does the CSV
        rows.append([epoch, cost, acc, v_cost, v_acc, seconds])
    if epoch == args.epochs:
        break
    t0 = time.perf_counter()
    order = rng.permutation(len(X_train_c))
    X_s, Y_s = X_train_c[order], Y_train[order]
    for step, start in enumerate(range(0, len(X_s), args.batch_size), 1):
        loss = model.train_on_batch(X_s[start:start + args.batch_size],
                                    Y_s[start:start + args.batch_size])
        if step % 100 == 0:
            print(f"\tStep {step}:\n\t\tCost: {loss}")
    seconds = time.perf_counter() - t0

path = out_path(args, "ex4_history.csv")
with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"])
    w.writerows(rows)
print(f"wrote {path}")
model.save(out_path(args, "ex4_lenet5.ckpt"))
