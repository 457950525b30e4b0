#!/usr/bin/python3
"""bench/torch_ops.py — PyTorch's CPU operators as the peer of minicnn's CPU backend.

Reads the directory written by `minicnn_bench --cpu --dump DIR` (every layer's inputs and minicnn's
outputs, NHWC / HWIO raw float32, plus manifest.json), and for every layer and op:
  1. runs the PyTorch operator on the same inputs and compares with minicnn's output
     (|torch - minicnn| <= atol + rtol |minicnn|, atol = 1e-6 * reduction length, rtol = 1e-4;
     max-pool masks compare exactly after converting PyTorch's flat indices to window positions);
  2. only then times the PyTorch operator: warm-up, then a monotonic clock per call over many calls,
     median reported, with GFLOP/s (conv) or GB/s (pooling, the same nominal bytes as the harness).

The operators are the ones autograd calls: aten.convolution (F.conv2d with bias),
aten.convolution_backward (grad_input only; grad_weight + grad_bias; all three in one call as
"conv_bwd", the peer of minicnn's C++ API conv_backward), aten.max_pool2d_with_indices
and aten.max_pool2d_with_indices_backward. PyTorch runs in its default NCHW contiguous layout; the
NHWC -> NCHW conversion is done once, outside the timed region. torch.set_num_threads(--threads).

Run with Debian's interpreter: /usr/bin/python3 bench/torch_ops.py --data DIR --json OUT
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench_common import cpu_model


def load(dirname, layer_id, name, shape, dtype=np.float32):
    path = os.path.join(dirname, f"{layer_id}_{name}.{'i32' if dtype == np.int32 else 'f32'}")
    a = np.fromfile(path, dtype=dtype)
    expected = int(np.prod(shape))
    if a.size != expected:
        raise ValueError(f"{path}: expected {expected} elements for shape {shape}, found {a.size}")
    return a.reshape(shape)


def nchw(a_nhwc):
    return torch.from_numpy(np.ascontiguousarray(a_nhwc.transpose(0, 3, 1, 2)))


def to_nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous().numpy()


def compare(got, ref, reduction_len, rtol=1e-4):
    got = np.asarray(got, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    if got.shape != ref.shape:
        return {"ok": False, "max_abs_err": float("inf"),
                "detail": f"shape mismatch: got {got.shape}, expected {ref.shape}"}
    atol = 1e-6 * max(reduction_len, 1)
    err = np.abs(got - ref)
    tol = atol + rtol * np.abs(ref)
    bad = ~(err <= tol)
    res = {"ok": not bool(bad.any()), "max_abs_err": float(err.max()) if err.size else 0.0}
    if bad.any():
        i = int(np.argmax(np.where(np.isnan(err), np.inf, err - tol)))
        res["detail"] = (f"{int(bad.sum())} elements out of tolerance, worst at {i}: "
                         f"torch {got[i]} minicnn {ref[i]}")
    return res


def time_op(fn, min_seconds, warmup=2, min_reps=5, max_reps=200):
    for _ in range(warmup):
        fn()
    ms = []
    total = 0.0
    while len(ms) < max_reps and (len(ms) < min_reps or total < min_seconds):
        t0 = time.perf_counter()
        fn()
        s = time.perf_counter() - t0
        ms.append(1e3 * s)
        total += s
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
            "reps": len(ms)}


def conv_layer(d, L):
    n, h, w, c, k = L["n"], L["h"], L["w"], L["c"], L["k"]
    kh, kw, oh, ow = L["kh"], L["kw"], L["oh"], L["ow"]
    stride, padding = [L["sh"], L["sw"]], [L["ph"], L["pw"]]
    lid = L["id"]
    x = nchw(load(d, lid, "inp", (n, h, w, c)))
    wt = torch.from_numpy(np.ascontiguousarray(
        load(d, lid, "weight", (kh, kw, c, k)).transpose(3, 2, 0, 1)))  # HWIO -> OIHW
    b = torch.from_numpy(load(d, lid, "bias", (k,)).copy())
    dy = nchw(load(d, lid, "dout", (n, oh, ow, k)))
    ref_out = load(d, lid, "out", (n, oh, ow, k))
    ref_dinp = load(d, lid, "dinp", (n, h, w, c))
    ref_dw = load(d, lid, "dweight", (kh, kw, c, k))
    ref_db = load(d, lid, "dbias", (k,))

    def fwd():
        return F.conv2d(x, wt, b, stride=stride, padding=padding)

    def bwd_data():
        return torch.ops.aten.convolution_backward(dy, x, wt, [k], stride, padding, [1, 1], False,
                                                   [0, 0], 1, [True, False, False])

    def bwd_filter():
        return torch.ops.aten.convolution_backward(dy, x, wt, [k], stride, padding, [1, 1], False,
                                                   [0, 0], 1, [False, True, True])

    def bwd_all():  # the peer of minicnn's conv_backward (C++ API: api_conv_bwd), one call
        return torch.ops.aten.convolution_backward(dy, x, wt, [k], stride, padding, [1, 1], False,
                                                   [0, 0], 1, [True, True, True])

    def check(op):
        if op == "conv_bwd":
            gi, gw, gb = bwd_all()
            checks = [compare(to_nhwc(gi), ref_dinp, kh * kw * k),
                      compare(gw.permute(2, 3, 1, 0).contiguous().numpy(), ref_dw, n * oh * ow),
                      compare(gb.numpy(), ref_db, n * oh * ow)]
            return next((r for r in checks if not r["ok"]), checks[0])
        if op == "conv_fwd":
            return compare(to_nhwc(fwd()), ref_out, kh * kw * c)
        if op == "conv_bwd_data":
            return compare(to_nhwc(bwd_data()[0]), ref_dinp, kh * kw * k)
        _, gw, gb = bwd_filter()
        r = compare(gw.permute(2, 3, 1, 0).contiguous().numpy(), ref_dw, n * oh * ow)  # OIHW->HWIO
        rb = compare(gb.numpy(), ref_db, n * oh * ow)
        return r if not r["ok"] or rb["ok"] else rb

    return {"conv_fwd": fwd, "conv_bwd_data": bwd_data, "conv_bwd_filter": bwd_filter,
            "conv_bwd": bwd_all}, check


def pool_layer(d, L):
    n, h, w, c = L["n"], L["h"], L["w"], L["c"]
    kh, kw, sh, sw, oh, ow = L["kh"], L["kw"], L["sh"], L["sw"], L["oh"], L["ow"]
    lid = L["id"]
    x = nchw(load(d, lid, "inp", (n, h, w, c)))
    dy = nchw(load(d, lid, "dout", (n, oh, ow, c)))
    ref_out = load(d, lid, "out", (n, oh, ow, c))
    ref_mask = load(d, lid, "mask", (n, oh, ow, c), np.int32)
    ref_dinp = load(d, lid, "dinp", (n, h, w, c))
    _, indices = torch.ops.aten.max_pool2d_with_indices(x, [kh, kw], [sh, sw], [0, 0], [1, 1], False)

    def fwd():
        return torch.ops.aten.max_pool2d_with_indices(x, [kh, kw], [sh, sw], [0, 0], [1, 1], False)

    def bwd():
        return torch.ops.aten.max_pool2d_with_indices_backward(dy, x, [kh, kw], [sh, sw], [0, 0],
                                                               [1, 1], False, indices)

    def check(op):
        if op == "pool_fwd":
            out, idx = fwd()
            r = compare(to_nhwc(out), ref_out, 1)
            # PyTorch's index is a flat position h*W + w in the input plane; minicnn's mask is the
            # window position a*kw + q. Convert and compare exactly.
            idx = idx.numpy()
            i = np.arange(oh).reshape(1, 1, oh, 1)
            j = np.arange(ow).reshape(1, 1, 1, ow)
            a = idx // w - i * sh
            q = idx % w - j * sw
            mask = (a * kw + q).transpose(0, 2, 3, 1)
            mism = int((mask != ref_mask).sum())
            if mism and r["ok"]:
                r = {"ok": False, "max_abs_err": r["max_abs_err"],
                     "detail": f"{mism} max-pool mask positions differ from PyTorch's indices"}
            return r
        return compare(to_nhwc(bwd()), ref_dinp, 1)

    return {"pool_fwd": fwd, "pool_bwd": bwd}, check


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="directory written by minicnn_bench --dump")
    ap.add_argument("--json", required=True, help="results file to write")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds of timed calls per op")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    with open(os.path.join(args.data, "manifest.json")) as f:
        manifest = json.load(f)
    results = []
    failures = 0
    print(f"PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads, {cpu_model()}")
    print(f"{'layer':16s} {'batch':>5s} {'op':16s} {'median ms':>11s} {'rate':>10s} {'reps':>6s}  "
          "validation vs minicnn")
    with torch.no_grad():
        for L in manifest["layers"]:
            ops, check = (conv_layer if L["kind"] == "conv" else pool_layer)(args.data, L)
            for op, fn in ops.items():
                v = check(op)  # validate before timing
                t = time_op(fn, args.min_time)
                r = {"layer": L["layer"], "batch": L["n"], "op": op, "backend": "torch-cpu",
                     **t, "threads": torch.get_num_threads(), "validated": v["ok"],
                     "max_abs_err_vs_minicnn": v["max_abs_err"]}
                if "detail" in v:
                    r["validation_detail"] = v["detail"]
                if L["kind"] == "conv":
                    r["flops"] = L["flops"]
                    r["gflops"] = L["flops"] / (t["median_ms"] * 1e6)
                    rate = r["gflops"]
                else:
                    r["bytes"] = L["bytes"]
                    r["gbps"] = L["bytes"] / (t["median_ms"] * 1e6)
                    rate = r["gbps"]
                failures += 0 if v["ok"] else 1
                results.append(r)
                status = "ok" if v["ok"] else "MISMATCH " + v.get("detail", "")
                print(f"{L['layer']:16s} {L['n']:5d} {op:16s} {t['median_ms']:11.4f} {rate:10.2f} "
                      f"{t['reps']:6d}  {status} (max|err| {v['max_abs_err']:.3g})", flush=True)
    meta = {"torch_version": torch.__version__, "threads": torch.get_num_threads(),
            "mkldnn": bool(torch.backends.mkldnn.is_available()), "cpu_model": cpu_model(),
            "python": sys.version.split()[0], "command": " ".join(sys.argv),
            "layout": "NCHW contiguous (converted from the dumped NHWC once, untimed)"}
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    if failures:
        print(f"{failures} ops disagree with minicnn", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
