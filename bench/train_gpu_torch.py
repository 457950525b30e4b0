#!/usr/bin/python3
"""bench/train_gpu_torch.py — PyTorch eager LeNet-5 training throughput, the peer of `minicnn train`.

The GPU half of the training benchmark (bench/run.sh runs it next to `minicnn train --device cuda`
in the same run; the CPU half is bench/train_cpu_vs_torch.*). Same model as docs/training.md's LeNet-5
(conv 6@5x5 "same" + relu, max pool 2x2, conv 16@5x5 "valid" + relu, max pool 2x2, dense 120 relu,
84 relu, 10 softmax; categorical cross-entropy; Adam lr 1e-3, betas (0.9, 0.999), eps 1e-7), batch
256, shuffled every epoch, on the whole Fashion-MNIST training set (60000 images), which is copied
to the device once before the clock starts: an epoch is only index/gather + forward/backward/step.

fp32 with TF32 off (torch.backends.cudnn.allow_tf32 = False, cuda.matmul.allow_tf32 = False);
cudnn.benchmark = True (PyTorch's fastest setting for fixed shapes; the warm-up below absorbs its
autotuning). Timing: a warm-up of --warmup-steps steps, then --epochs full epochs, each timed with a
device synchronisation at its end; the report gives every epoch and the median.

Writes --json FILE: {"seconds": median epoch seconds, "train_images_per_second": ..., "epochs": [...],
"device": ..., "torch_version": ..., ...}. Exits 0 with a message and "skipped" in the JSON when CUDA
is not available (--device cpu runs the same loop on the CPU, for checking the script itself).
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench_common import DEFAULT_DATA, find, lenet5_torch, read_idx

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--json", required=True)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (script check only)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs")
    ap.add_argument("--warmup-steps", type=int, default=50)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (for --device cpu)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    base = {"peer": "torch-eager", "torch_version": torch.__version__, "command": " ".join(sys.argv),
            "batch_size": args.batch_size}
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        why = "PyTorch here has no usable CUDA device (torch.cuda.is_available() is False)"
        print(f"train_gpu_torch: skipped: {why}")
        with open(args.json, "w") as f:
            json.dump({**base, "skipped": why}, f, indent=1)
        return 0

    dev = torch.device(args.device)
    torch.manual_seed(args.seed)
    if dev.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(dev)
    else:
        torch.set_num_threads(args.threads)
        name = "CPU"

    images = read_idx(find(args.data, "train-images-idx3-ubyte"))
    labels = read_idx(find(args.data, "train-labels-idx1-ubyte"))
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    n = images.shape[0]
    # The whole training set, resident on the device, scaled to [0, 1].
    x_all = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1).to(dev)  # (n,1,28,28)
    y_all = torch.from_numpy(labels.astype(np.int64)).to(dev)

    model = lenet5_torch().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    bs = args.batch_size

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def step(idx):
        xb, yb = x_all[idx], y_all[idx]
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss, logits

    # Warm-up: cuDNN autotuning, allocator, lazy kernels.
    perm = torch.randperm(n, device=dev)
    for s in range(min(args.warmup_steps, max(n // bs, 1))):
        step(perm[s * bs:(s + 1) * bs])
    sync()

    epochs = []
    for e in range(args.epochs):
        sync()
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=dev)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.int64)
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            loss, logits = step(idx)
            loss_sum += loss.detach() * idx.numel()
            correct += (logits.detach().argmax(1) == y_all[idx]).sum()
        sync()
        seconds = time.perf_counter() - t0
        ep = {"epoch": e + 1, "seconds": seconds, "images_per_second": n / seconds,
              "loss": float(loss_sum) / n, "accuracy": float(correct) / n}
        epochs.append(ep)
        print(f"torch {name} epoch {e + 1}: {seconds:.3f} s, {n / seconds:.0f} images/s, "
              f"loss {ep['loss']:.4f}, accuracy {ep['accuracy']:.4f}", flush=True)

    med = statistics.median(ep["seconds"] for ep in epochs)
    res = {**base, "device": name, "images": n, "epochs": epochs, "seconds": med,
           "train_images_per_second": n / med,
           "settings": {"tf32": False, "cudnn_benchmark": dev.type == "cuda",
                        "threads": torch.get_num_threads() if dev.type == "cpu" else None,
                        "data_resident_on_device": True, "warmup_steps": args.warmup_steps}}
    with open(args.json, "w") as f:
        json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
