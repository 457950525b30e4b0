#!/usr/bin/env python3
"""The exercise's task 5: LeNet-5 as a Keras-style model, fit for 5 epochs with validation.

minicnn.lenet5() is the exercise's Keras model (He normal initialisation, Adam, categorical
cross-entropy on one-hot labels); fit() prints loss and accuracy per epoch and returns a History
like Keras's. Then, as the exercise's main did: predict the validation set and print the first
prediction, its class and the true class; finally the test accuracy. Writes out/ex5_history.csv
(the per-epoch log) and out/lenet5.ckpt (the trained model, for plot_training.py).
"""
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
X_test, Y_test = data["test"]
if args.train_size:
    X_train, Y_train = X_train[:args.train_size], Y_train[:args.train_size]
X_train_c = X_train[..., np.newaxis]
X_valid_c = X_valid[..., np.newaxis]
Y_train_oh = np.eye(10, dtype=np.float32)[Y_train]  # K.utils.to_categorical
Y_valid_oh = np.eye(10, dtype=np.float32)[Y_valid]

model = minicnn.lenet5(seed=args.seed, device=args.device)
model.summary()
history = model.fit(X_train_c, Y_train_oh, batch_size=args.batch_size, epochs=args.epochs,
                    validation_data=(X_valid_c, Y_valid_oh), seed=args.seed + 1,
                    csv_path=out_path(args, "ex5_history.csv"))
print("history:", {k: [round(v, 4) for v in vals] for k, vals in history.history.items()
                   if k in ("loss", "accuracy", "val_loss", "val_accuracy")})
print("device:", history.params["device"])

Y_pred = model.predict(X_valid_c)
print(Y_pred[0])
Y_pred = np.argmax(Y_pred, 1)
print(Y_pred[0])
print(Y_valid[0])

loss, acc = model.evaluate(X_test[..., np.newaxis], Y_test)
print(f"test: loss {loss:.4f}, accuracy {acc:.4f}")
path = out_path(args, "lenet5.ckpt")
model.save(path)
print(f"wrote {out_path(args, 'ex5_history.csv')} and {path}")
