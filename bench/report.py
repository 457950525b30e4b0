#!/usr/bin/python3
"""bench/report.py — joins the benchmark parts of one bench/run.sh run into <prefix>.json and <prefix>.md.

Inputs (each optional except --meta; a missing or skipped part is reported as such, never invented):
  --meta FILE          run.sh's facts: date, device, CPU model, GPU, driver, commit, command, load
  --cpu-ops FILE       minicnn_bench --cpu --json (minicnn's CPU backend)
  --torch-ops FILE     bench/torch_ops.py --json (PyTorch CPU, validated against minicnn)
  --torch2-ops FILE    the same with a second PyTorch (run.sh's TORCH2_PYTHON)
  --python-ops L=FILE  bench/python_ops.py --json: the exercise's functions from Python against
                       the PyTorch version L, same process (one file per PyTorch)
  --gpu-ops FILE       minicnn_bench --gpu --json (minicnn CUDA vs cuDNN, validated against each other)
  --train FILE ...     training-throughput results: JSON files, each either one result
                       ({"seconds", "train_images_per_second", ...}) or an object/list of them;
                       given as LABEL=FILE
Ratios are peer time / minicnn time: above 1, minicnn is faster; below 1, the peer is.
"""
import argparse
import json
import os
import statistics
import sys


def load(path):
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def key(r):
    # minicnn_bench's C++ API rows ("api_conv_fwd", ...) join PyTorch's op of the same name.
    op = r["op"][4:] if r["op"].startswith("api_") else r["op"]
    return (r["layer"], int(r["batch"]), op)


def rate_str(r):
    if r is None:
        return "—"
    if "gflops" in r:
        return f"{r['gflops']:.2f} GFLOP/s"
    if "gbps" in r:
        return f"{r['gbps']:.2f} GB/s"
    return "—"


def ms(r):
    return "—" if r is None else f"{r['median_ms']:.4f}"


def op_table(title, mine, peer, mine_name, peer_name, note):
    """Markdown table of minicnn vs its peer, joined by (layer, batch, op)."""
    lines = [f"### {title}", "", note, ""]
    lines.append(f"| layer | batch | op | {mine_name} ms | {mine_name} rate | {peer_name} ms | "
                 f"{peer_name} rate | {peer_name}/{mine_name} | validated |")
    lines.append("|---|---:|---|---:|---:|---:|---:|---:|---|")
    peer_by = {key(r): r for r in peer}
    rows = []
    for m in mine:
        p = peer_by.get(key(m))
        valid = p.get("validated") if p else m.get("validated")
        ratio = "—"
        if p is not None and valid:
            ratio = f"{p['median_ms'] / m['median_ms']:.2f}"
        elif p is not None:
            ratio = "(invalid)"
        vtxt = {True: "yes", False: "**NO**", None: "not run"}[valid]
        if p and not valid and p.get("validation_detail"):
            vtxt += f" ({p['validation_detail']})"
        rows.append(f"| {m['layer']} | {int(m['batch'])} | {m['op']} | {ms(m)} | {rate_str(m)} | "
                    f"{ms(p)} | {rate_str(p)} | {ratio} | {vtxt} |")
    lines += rows
    return lines


def train_rows(label, data):
    """Flatten one training JSON into (label, side, device, seconds, images/s, note) rows."""
    rows = []
    if data is None:
        return [(label, "—", "—", None, None, "not run")]
    if isinstance(data, list):
        for i, d in enumerate(data):
            rows += train_rows(f"{label}[{i}]", d)
        return rows
    if "skipped" in data:
        return [(label, data.get("peer", "—"), "—", None, None, "skipped: " + str(data["skipped"]))]
    if "train_images_per_second" in data:
        side = (data.get("peer") or data.get("side") or data.get("name") or
                ("minicnn" if data.get("command") == "train" else label))
        dev = data.get("device", "—")
        # Per-epoch logs (minicnn's "history", PyTorch's "epochs"): the median epoch, the same
        # statistic for both sides; otherwise the file's own summary.
        eps = data.get("history") or data.get("epochs")
        if isinstance(eps, list) and eps and all("seconds" in e for e in eps):
            secs = sorted(e["seconds"] for e in eps)
            med = statistics.median(secs)
            ips = statistics.median(e.get("images_per_second", 0) for e in eps)
            note = f"median of {len(eps)} epochs ({', '.join(f'{x:.2f}' for x in secs)} s)"
            return [(label, side, dev, med, ips, note)]
        sec = data.get("train_seconds", data.get("seconds"))
        return [(label, side, dev, sec, data["train_images_per_second"], "")]
    for k, v in data.items():  # an object of results, e.g. {"minicnn": {...}, "torch": {...}}
        if k != "meta" and (isinstance(v, dict) or
                            (isinstance(v, list) and all(isinstance(x, dict) for x in v))):
            rows += train_rows(f"{label}/{k}", v)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meta", required=True)
    ap.add_argument("--cpu-ops")
    ap.add_argument("--torch-ops")
    ap.add_argument("--torch2-ops")
    ap.add_argument("--python-ops", nargs="*", default=[], help="LABEL=FILE")
    ap.add_argument("--gpu-ops")
    ap.add_argument("--train", nargs="*", default=[], help="LABEL=FILE")
    ap.add_argument("--out-prefix", required=True)
    args = ap.parse_args()

    meta = load(args.meta)
    cpu = load(args.cpu_ops)
    torch_ops = load(args.torch_ops)
    torch2_ops = load(args.torch2_ops)
    python_ops = {}
    for spec in args.python_ops:
        label, _, path = spec.partition("=")
        python_ops[label] = load(path)
    gpu = load(args.gpu_ops)
    train = {}
    for spec in args.train:
        label, _, path = spec.partition("=")
        train[label] = load(path)

    combined = {"meta": meta, "cpu_ops": cpu, "torch_cpu_ops": torch_ops,
                "torch2_cpu_ops": torch2_ops, "python_ops": python_ops, "gpu_ops": gpu,
                "train": train}
    with open(args.out_prefix + ".json", "w") as f:
        json.dump(combined, f, indent=1)

    md = [f"# minicnn benchmark — {meta['date']} — {meta['device']}", ""]
    md += ["| | |", "|---|---|"]
    for k in ("date", "device", "cpu_model", "cpu_cores", "gpu", "driver", "commit", "command",
              "load_before", "load_after", "torch_version", "torch2_version"):
        if meta.get(k) not in (None, ""):
            md.append(f"| {k} | `{meta[k]}` |")
    md.append("")
    md.append("Ratios are peer time / minicnn time (median of each): above 1 minicnn is faster. "
              "Conv rates are GFLOP/s (2 x multiply-adds); pooling rates are GB/s of the nominal "
              "traffic (one read of the op's input, one write of its output), the same count for "
              "both sides. Every op is validated against its peer on the same inputs before it is "
              "timed; a ratio is shown only for validated ops.")
    md.append("")

    md.append("## Ops on the CPU: minicnn vs PyTorch")
    md.append("")
    if cpu is None:
        md.append("Not run.")
    else:
        cm = cpu.get("meta", {})
        tm = (torch_ops or {}).get("meta", {})
        note = (f"minicnn CPU backend: {cm.get('cpu_threads', '?')} threads, steady clock, "
                f"median of >= 5 calls and >= the --min-time budget. Rows conv_*/pool_* are the "
                f"pointer-level launchers of minicnn/cpu_backend.h (output buffers given); rows "
                f"api_* are the functional C++ API of minicnn/ops.h as a user calls it (argument "
                f"checks, result tensors allocated per call; api_conv_bwd returns dA_prev, dW and "
                f"db; api_pool_bwd is max pooling's backward by the exercise's all-ties rule), each "
                f"joined to PyTorch's op of the same name (conv_bwd: all three gradients in one "
                f"convolution_backward call). ")
        if torch_ops:
            note += (f"PyTorch {tm.get('torch_version')} ({tm.get('threads')} threads, "
                     f"mkldnn {'on' if tm.get('mkldnn') else 'off'}, {tm.get('layout')}): "
                     "aten.convolution / convolution_backward / max_pool2d_with_indices(_backward).")
        else:
            note += "PyTorch: not run."
        md += op_table("minicnn CPU vs PyTorch CPU", cpu["results"],
                       (torch_ops or {}).get("results", []), "minicnn", "torch", note)
        if torch2_ops:
            t2 = torch2_ops.get("meta", {})
            md.append("")
            md += op_table(f"minicnn CPU vs PyTorch {t2.get('torch_version')} CPU", cpu["results"],
                           torch2_ops.get("results", []), "minicnn", "torch2",
                           f"The same minicnn rows against PyTorch {t2.get('torch_version')} "
                           f"({t2.get('threads')} threads, {t2.get('layout')}).")
    md.append("")

    md.append("## The exercise's functions from Python: minicnn module vs PyTorch, same process")
    md.append("")
    if not python_ops:
        md.append("Not run.")
    for label, data in python_ops.items():
        if data is None:
            md.append(f"- PyTorch {label}: not run.")
            continue
        pm = data.get("meta", {})
        md += [f"### PyTorch {pm.get('torch_version', label)}", "",
               f"`{pm.get('command')}`: minicnn.conv_forward / conv_backward / pool_forward / "
               f"pool_backward on NumPy arrays (everything a call pays) against F.conv2d, "
               f"aten.convolution_backward (3 outputs), aten.max_pool2d_with_indices(_backward) on "
               f"NCHW tensors, {pm.get('threads')} threads each, in alternating blocks of calls, "
               f"each block timed after {pm.get('settle_s', 0) * 1e3:g} ms of untimed calls (the "
               f"other library's threads may still spin); medians.", "",
               "| layer | batch | op | minicnn ms | torch ms | torch/minicnn | validated |",
               "|---|---:|---|---:|---:|---:|---|"]
        for r in data["results"]:
            ratio = f"{r['ratio']:.2f}" if r["validated"] else "(invalid)"
            md.append(f"| {r['layer']} | {r['batch']} | {r['op']} | {r['minicnn_median_ms']:.4f} | "
                      f"{r['torch_median_ms']:.4f} | {ratio} | "
                      f"{'yes' if r['validated'] else '**NO**'} |")
        md.append("")
    md.append("")

    md.append("## Ops on the GPU: minicnn vs cuDNN")
    md.append("")
    gm = (gpu or {}).get("meta", {})
    if gpu is None:
        md.append("Not run.")
    elif gm.get("gpu_skipped"):
        md.append(f"Skipped: {gm['gpu_skipped']}. No GPU numbers are reported.")
    else:
        mine = [r for r in gpu["results"] if r["backend"] == "minicnn-cuda"]
        peer = [r for r in gpu["results"] if r["backend"] == "cudnn"]
        note = (f"{gm.get('gpu')}. CUDA events, L2 flushed before every repetition, median. fp32, "
                "TF32 off (CUDNN_FMA_MATH). cuDNN algorithms: " +
                "; ".join(sorted({f"{r['layer']} b{int(r['batch'])} {r['op']}: {r.get('algo')}"
                                  for r in peer})))
        md += op_table("minicnn CUDA vs cuDNN", mine, peer, "minicnn", "cudnn", note)
    md.append("")

    md.append("## LeNet-5 training throughput (data resident in memory; cpu = batch 256, cpu-bN = batch N)")
    md.append("")
    if not train:
        md.append("Not run.")
    else:
        md.append("| part | side | device | epoch seconds | images/s | note |")
        md.append("|---|---|---|---:|---:|---|")
        all_rows = []
        for label, data in train.items():
            for (lab, side, dev, sec, ips, note) in train_rows(label, data):
                s = "—" if sec is None else f"{sec:.3f}"
                i = "—" if ips is None else f"{ips:.0f}"
                md.append(f"| {lab} | {side} | {dev} | {s} | {i} | {note} |")
                all_rows.append((lab, side, sec))
        # Peer / minicnn median-epoch-time ratios.
        secs = {lab: sec for (lab, _, sec) in all_rows}
        md.append("")
        groups = [("GPU", "gpu-minicnn", ("gpu-torch",))]
        for label in train:
            if label.startswith("cpu"):
                groups.append((f"CPU ({label}), PyTorch {meta.get('torch_version')}",
                               f"{label}/minicnn",
                               (f"{label}/torch", f"{label}/torch_passive")))
                for k in (train[label] or {}):
                    if k.startswith("torch2") or (k.startswith("torch") and k[5:6].isdigit()):
                        groups.append((f"CPU ({label}), PyTorch {k[5:]}", f"{label}/minicnn",
                                       (f"{label}/{k}",)))
        for what, mine, peers in groups:
            peer_secs = [(secs[p], p) for p in peers if secs.get(p)]
            if secs.get(mine) and peer_secs:
                best, which = min(peer_secs)  # the faster PyTorch run, when there are several
                md.append(f"- {what} median epoch time, PyTorch ({which}, the faster run) / "
                          f"minicnn: **{best / secs[mine]:.2f}** (above 1: minicnn is faster)")
        for label in train:
            rmeta = (train[label] or {}).get("meta", {})
            if label.startswith("cpu") and rmeta.get("rounds", 1) > 1:
                md.append(f"- CPU ({label}): {rmeta['rounds']} rounds (minicnn and every PyTorch "
                          "run in turn); minicnn / the last PyTorch per round: "
                          + ", ".join("%.2f" % x for x in rmeta.get("ratio_per_round", []))
                          + "; the rows above are the median round's")
    md.append("")
    if meta.get("notes"):
        md += ["## Notes", ""] + [f"- {n}" for n in meta["notes"]] + [""]

    with open(args.out_prefix + ".md", "w") as f:
        f.write("\n".join(md))
    print(f"wrote {args.out_prefix}.md and {args.out_prefix}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
