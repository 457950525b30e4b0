#!/usr/bin/python3
"""bench/python_ops.py — the exercise's four functions as users call them from Python, against PyTorch.

minicnn side: minicnn.conv_forward / conv_backward / pool_forward / pool_backward on NumPy arrays
(argument parsing, dtype checks, the result handed to NumPy: everything a user's call pays).
PyTorch side, in the same process: the operators autograd calls, on torch tensors in PyTorch's
default NCHW layout (converted once, untimed): F.conv2d with bias; aten.convolution_backward with
all three outputs (grad_input, grad_weight, grad_bias); aten.max_pool2d_with_indices;
aten.max_pool2d_with_indices_backward (indices from one untimed forward call).

Cases: LeNet-5's layers (docs/training.md) at the given batches: conv1 (n,28,28,1) 5x5 1->6 "same",
conv2 (n,14,14,6) 5x5 6->16 "valid", pool1 (n,28,28,6) and pool2 (n,10,10,16) max 2x2 stride 2.
Inputs uniform in [-1, 1) from a fixed seed: a max window has no ties, so minicnn's all-ties rule and
PyTorch's first-max rule give the same gradient.

Method: every pair is validated first (|torch - minicnn| <= atol + rtol |minicnn|, atol = 1e-6 x
reduction length, rtol = 1e-4); then minicnn and PyTorch run in alternating blocks of calls (about
20 ms timed each), until each has at least 7 timed calls and --min-time seconds; medians reported.
Each block first runs untimed calls for --settle seconds (default 0.015): PyTorch's OpenMP worker
keeps spinning for about 8 ms after its last call (measured on 2 cores: minicnn's conv2 forward at
batch 32 took 0.10 ms in the 8 ms after a PyTorch call and 0.055 ms from then on; PyTorch's calls
were not slowed by minicnn's pool, which yields while it spins), so a block that started timing
at once timed minicnn against PyTorch's spinning thread. Calls alternating one by one did so for
both libraries.
ratio = torch median / minicnn median (above 1: minicnn is faster).

Run with any interpreter that has torch and numpy; the minicnn module is found on --module-dir:
  OMP_NUM_THREADS=2 /usr/bin/python3 bench/python_ops.py --module-dir build/python --json out.json
  OMP_NUM_THREADS=2 /work/torch2-venv/bin/python bench/python_ops.py --module-dir build/python ...
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np


def compare(got, ref, reduction_len, rtol=1e-4):
    got = np.asarray(got, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    if got.shape != ref.shape:
        return False, float("inf")
    err = np.abs(got - ref)
    ok = bool((err <= 1e-6 * max(reduction_len, 1) + rtol * np.abs(ref)).all())
    return ok, float(err.max()) if err.size else 0.0


def paired(fa, fb, min_seconds, settle, warmup=2, min_reps=7, max_reps=400, block_seconds=0.02):
    """Times fa and fb in alternating blocks of calls (each block's timed part about block_seconds
    long), every block starting with untimed calls for `settle` seconds (at least two): the
    other library's threads may still spin after its last call (PyTorch's OpenMP worker does for
    about 8 ms), and a call timed while they do runs on a shared core."""
    for _ in range(warmup):
        fa()
        fb()
    t0 = time.perf_counter()
    fa()
    per_call = max(time.perf_counter() - t0, 1e-6)
    block = max(3, min(50, int(block_seconds / per_call)))
    ta, tb = [], []
    total = 0.0
    while len(ta) < max_reps and (len(ta) < min_reps or total < min_seconds):
        for f, out in ((fa, ta), (fb, tb)):
            start, untimed = time.perf_counter(), 0
            while untimed < 2 or time.perf_counter() - start < settle:
                f()
                untimed += 1
            for _ in range(block):
                t1 = time.perf_counter()
                f()
                t2 = time.perf_counter()
                total += t2 - t1
                out.append(1e3 * (t2 - t1))
    return ta, tb


def cases(batches):
    for n in batches:
        yield {"layer": "lenet_conv1", "kind": "conv", "n": n, "hwc": (28, 28, 1), "k": 6,
               "pad": "same", "tpad": 2}
        yield {"layer": "lenet_pool1", "kind": "pool", "n": n, "hwc": (28, 28, 6)}
        yield {"layer": "lenet_conv2", "kind": "conv", "n": n, "hwc": (14, 14, 6), "k": 16,
               "pad": "valid", "tpad": 0}
        yield {"layer": "lenet_pool2", "kind": "pool", "n": n, "hwc": (10, 10, 16)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module-dir", required=True, help="folder holding the built minicnn module")
    ap.add_argument("--json", required=True)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--batches", default="256,32")
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--settle", type=float, default=0.015,
                    help="untimed seconds at the start of every block (see Method)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    sys.path.insert(0, os.path.abspath(args.module_dir))
    import minicnn
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(7)

    def uniform(*shape):
        return rng.uniform(-1, 1, size=shape).astype(np.float32)

    def nchw(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))

    def nhwc(t):
        return t.permute(0, 2, 3, 1).contiguous().numpy()

    results = []
    print(f"minicnn (Python module) vs PyTorch {torch.__version__}, {args.threads} threads each")
    print(f"{'layer':12s} {'batch':>5s} {'op':9s} {'minicnn ms':>11s} {'torch ms':>9s} {'ratio':>6s}")
    failures = 0
    with torch.no_grad():
        for L in cases([int(b) for b in args.batches.split(",")]):
            n, (h, w, c) = L["n"], L["hwc"]
            A = uniform(n, h, w, c)
            x = nchw(A)
            ops = {}
            if L["kind"] == "conv":
                k = L["k"]
                W = uniform(5, 5, c, k)
                b = uniform(1, 1, 1, k)
                wt = torch.from_numpy(np.ascontiguousarray(W.transpose(3, 2, 0, 1)))
                bt = torch.from_numpy(b.reshape(k).copy())
                Z = minicnn.conv_forward(A, W, b, "linear", L["pad"], (1, 1), device="cpu")
                dZ = uniform(*Z.shape)
                dy = nchw(dZ)
                p = [L["tpad"], L["tpad"]]

                def m_fwd():
                    return minicnn.conv_forward(A, W, b, "linear", L["pad"], (1, 1), device="cpu")

                def t_fwd():
                    return F.conv2d(x, wt, bt, padding=p)

                def m_bwd():
                    return minicnn.conv_backward(dZ, A, W, b, L["pad"], (1, 1), device="cpu")

                def t_bwd():
                    return torch.ops.aten.convolution_backward(dy, x, wt, [k], [1, 1], p, [1, 1],
                                                               False, [0, 0], 1,
                                                               [True, True, True])

                def v_fwd():
                    return [compare(nhwc(t_fwd()), m_fwd(), 25 * c)]

                def v_bwd():
                    da, dw, db = m_bwd()
                    gi, gw, gb = t_bwd()
                    red = n * Z.shape[1] * Z.shape[2]
                    return [compare(nhwc(gi), da, 25 * k),
                            compare(gw.permute(2, 3, 1, 0).contiguous().numpy(), dw, red),
                            compare(gb.numpy(), db.reshape(k), red)]

                ops = {"conv_fwd": (m_fwd, t_fwd, v_fwd), "conv_bwd": (m_bwd, t_bwd, v_bwd)}
            else:
                dA = uniform(n, h // 2, w // 2, c)
                dy = nchw(dA)
                _, idx = torch.ops.aten.max_pool2d_with_indices(x, [2, 2], [2, 2], [0, 0], [1, 1],
                                                                False)

                def m_fwd():
                    return minicnn.pool_forward(A, (2, 2), (2, 2), "max", device="cpu")

                def t_fwd():
                    return torch.ops.aten.max_pool2d_with_indices(x, [2, 2], [2, 2], [0, 0],
                                                                  [1, 1], False)

                def m_bwd():
                    return minicnn.pool_backward(dA, A, (2, 2), (2, 2), "max", device="cpu")

                def t_bwd():
                    return torch.ops.aten.max_pool2d_with_indices_backward(
                        dy, x, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)

                def v_fwd():
                    return [compare(nhwc(t_fwd()[0]), m_fwd(), 1)]

                def v_bwd():
                    return [compare(nhwc(t_bwd()), m_bwd(), 1)]

                ops = {"pool_fwd": (m_fwd, t_fwd, v_fwd), "pool_bwd": (m_bwd, t_bwd, v_bwd)}
            for op, (mf, tf, vf) in ops.items():
                checks = vf()
                ok = all(o for o, _ in checks)
                failures += 0 if ok else 1
                tm, tt = paired(mf, tf, args.min_time, args.settle)
                mm, mt = statistics.median(tm), statistics.median(tt)
                results.append({"layer": L["layer"], "batch": n, "op": op, "api": "python",
                                "minicnn_median_ms": mm, "minicnn_min_ms": min(tm),
                                "torch_median_ms": mt, "torch_min_ms": min(tt), "reps": len(tm),
                                "ratio": mt / mm, "validated": ok,
                                "max_abs_err": max(e for _, e in checks)})
                print(f"{L['layer']:12s} {n:5d} {op:9s} {mm:11.4f} {mt:9.4f} {mt / mm:6.2f}"
                      f"{'' if ok else '  MISMATCH'}", flush=True)
    meta = {"torch_version": torch.__version__, "threads": args.threads,
            "python": sys.version.split()[0], "numpy": np.__version__,
            "command": " ".join(sys.argv), "settle_s": args.settle,
            "torch_layout": "NCHW (converted once, untimed)"}
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
