"""bench/bench_common.py — what the Python benchmark scripts share: the IDX reader for the data
set, the CPU's name, and PyTorch's LeNet-5 (the same model as docs/training.md's, for the peer runs)."""

import gzip
import os
import platform

import numpy as np

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """IDX file (raw or .gz) -> numpy array; images (n, 28, 28) uint8 or labels (n,) uint8."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic == 0x00000803:
        n, h, w = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, h, w)
    if magic == 0x00000801:
        n = int.from_bytes(data[4:8], "big")
        return np.frombuffer(data, np.uint8, offset=8).reshape(n)
    raise ValueError(f"{path}: expected IDX magic 0x00000803 or 0x00000801, found {magic:#010x}")


def find(data_dir, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{data_dir}: no {stem}[.gz]")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def lenet5_torch():
    """PyTorch's LeNet-5 as docs/training.md builds it (logits out: cross_entropy applies the softmax)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 6, 5, padding=2)  # C1: 1@28x28 -> 6@28x28
            self.c3 = nn.Conv2d(6, 16, 5)            # C3: 6@14x14 -> 16@10x10
            self.f6 = nn.Linear(400, 120)
            self.f7 = nn.Linear(120, 84)
            self.f8 = nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.c1(x)), 2)  # S2: -> 6@14x14
            x = F.max_pool2d(F.relu(self.c3(x)), 2)  # S4: -> 16@5x5
            x = torch.flatten(x, 1)
            x = F.relu(self.f6(x))
            x = F.relu(self.f7(x))
            return self.f8(x)

    return LeNet5()
