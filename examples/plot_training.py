#!/usr/bin/env python3
"""Training curves and a test confusion matrix, to a PNG.

Reads a per-epoch CSV log by its header (minicnn's --metrics and fit(csv_path=...) logs:
epoch,loss,accuracy,val_loss,val_accuracy,...; train_loss/train_accuracy are accepted too; empty,
"null" or negative validation cells mean "no value") and draws loss and accuracy per epoch. With --model (a checkpoint written by
Sequential.save() or minicnn's trainer) it also predicts the test set and draws the confusion
matrix (rows: true class, columns: predicted; cells: counts, coloured by the row's fraction).

  PYTHONPATH=build/python python3 examples/plot_training.py --csv examples/out/ex5_history.csv \
      --model examples/out/lenet5.ckpt --png examples/out/training.png
"""
import csv
import math
import os

import numpy as np

from exdata import load, parser

COLUMNS = {"train_loss": ["loss", "train_loss"], "train_accuracy": ["accuracy", "train_accuracy", "acc"],
           "val_loss": ["val_loss"], "val_accuracy": ["val_accuracy", "val_acc"]}


def read_log(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        rows = list(reader)
    if "epoch" not in header:
        raise SystemExit(f"{path}: no 'epoch' column in the header {header}")
    out = {"epoch": np.array([int(r["epoch"]) for r in rows])}
    for key, names in COLUMNS.items():
        name = next((n for n in names if n in header), None)
        vals = []
        for r in rows:
            cell = (r.get(name) or "").strip() if name else ""
            v = float(cell) if cell and cell != "null" else math.nan
            vals.append(math.nan if v < 0 else v)
        out[key] = np.array(vals)
    if np.all(np.isnan(out["train_loss"])):
        raise SystemExit(f"{path}: no training loss column ({COLUMNS['train_loss']}) in {header}")
    return out


def confusion(model_path, args):
    import minicnn

    data = load(args)
    X, Y = data["test"]
    model = minicnn.load_model(model_path, device=args.device)
    pred = np.argmax(model.predict(X[..., np.newaxis]), axis=1)
    k = model.output_shape[0]
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (Y, pred), 1)
    return cm, data["classes"]


def main():
    p = parser(__doc__)
    p.add_argument("--csv", required=True, help="per-epoch CSV log")
    p.add_argument("--model", help="checkpoint to draw the test confusion matrix for")
    p.add_argument("--png", help="output PNG (default: the CSV's name with .png)")
    p.add_argument("--title", default=None)
    args = p.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = read_log(args.csv)
    cm = classes = None
    if args.model:
        cm, classes = confusion(args.model, args)
    if cm is not None:  # curves stacked on the left, the matrix on the right
        fig = plt.figure(figsize=(13, 6.2))
        grid = fig.add_gridspec(2, 2, width_ratios=[1, 1.25])
        axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0]),
                fig.add_subplot(grid[:, 1])]
    else:
        fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2))
    ep = log["epoch"]
    for ax, key, label in [(axes[0], "loss", "loss (cross-entropy)"), (axes[1], "accuracy", "accuracy")]:
        ax.plot(ep, log[f"train_{key}"], "o-", label="training")
        if not np.all(np.isnan(log[f"val_{key}"])):
            ax.plot(ep, log[f"val_{key}"], "s--", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_xticks(ep)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_title("loss per epoch")
    axes[1].set_title("accuracy per epoch")
    if cm is not None:
        ax = axes[2]
        frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if frac[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(classes)))
        ax.set_yticks(range(len(classes)))
        ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=9)
        ax.set_yticklabels(classes, fontsize=9)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        acc = np.trace(cm) / cm.sum()
        ax.set_title(f"test set: {cm.sum()} images, accuracy {acc:.4f}")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    png = args.png or os.path.splitext(args.csv)[0] + ".png"
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
