#!/usr/bin/python3
"""bench/train_cpu_vs_torch.py — LeNet-5 training throughput on the CPU: `minicnn train` against
PyTorch eager, same model, same data, same batch size, same thread count, in the same run.

Both sides train docs/training.md's LeNet-5 (conv 6@5x5 "same" + relu, max pool 2x2, conv 16@5x5 "valid" +
relu, max pool 2x2, dense 120 relu, 84 relu, 10 softmax; categorical cross-entropy; Adam lr 1e-3,
betas (0.9, 0.999), eps 1e-7) with batch 256 (default) on the whole Fashion-MNIST training set
(60000 images, no validation split), shuffled every epoch, data resident in memory, fp32.
  minicnn: `minicnn train --device cpu --validation 0 --json ...` with OMP_NUM_THREADS=threads (the
           CPU engine's thread count); its JSON holds each epoch's training seconds.
  PyTorch: torch.set_num_threads(threads) (Debian python3-torch, /usr/bin/python3), a warm-up, then
           the same number of epochs, each timed with time.perf_counter(); run twice, each in its own
           process: with PyTorch's defaults, and with OMP_WAIT_POLICY=passive (its OpenMP threads spin
           while they wait by default, which collapses its throughput when the cores are shared with
           other processes; passive is its best setting on a busy machine). minicnn is compared
           with the faster of the two.
Statistic: the median epoch (images/s = images / median epoch seconds) for both sides. Each epoch's
process CPU time is recorded too: images per CPU-second (all threads) is the cost of training,
which, unlike images/s, does not depend on how busy the machine's cores are with other work.

Writes bench/results/<date>-cpu-train.json and .md (CPU model, commit, command, settings, every epoch)
unless --no-results, and --json FILE ({"minicnn": ..., "torch": ...}) for bench/run.sh.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench_common import DEFAULT_DATA, cpu_model, find, lenet5_torch, read_idx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git_commit():
    try:
        head = subprocess.check_output(["git", "-C", REPO, "rev-parse", "HEAD"], text=True).strip()
        dirty = subprocess.call(["git", "-C", REPO, "diff", "--quiet", "HEAD", "--", "host", "include",
                                 "cuda", "tools"]) != 0
        return head + ("+local-changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_minicnn(args):
    """minicnn train on the CPU; returns its JSON (per-epoch seconds in "history")."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "minicnn.json")
        cmd = [args.minicnn, "train", "--device", "cpu", "--data", args.data,
               "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
               "--validation", "0", "--seed", str(args.seed), "--json", out]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        print("+ OMP_NUM_THREADS=%d %s" % (args.threads, " ".join(cmd)), flush=True)
        subprocess.run(cmd, check=True, env=env)
        with open(out) as f:
            res = json.load(f)
    eps = res["history"]
    med = statistics.median(e["seconds"] for e in eps)
    cpu = statistics.median(e["cpu_seconds"] for e in eps)
    res["images_per_cpu_second"] = res["train_images"] / cpu
    res.update({"peer": "minicnn", "command_line": "OMP_NUM_THREADS=%d " % args.threads + " ".join(cmd),
                "seconds": med, "train_images_per_second": res["train_images"] / med,
                "images": res["train_images"]})
    return res


def run_torch_process(args, policy, python=None):
    """run_torch in a fresh process (OpenMP reads OMP_WAIT_POLICY when it starts), with `python`
    (another interpreter, e.g. a venv with PyTorch 2 from PyPI) or this one."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "torch.json")
        cmd = [python or sys.executable, os.path.abspath(__file__), "--torch-worker", out, "--data", args.data,
               "--threads", str(args.threads), "--batch-size", str(args.batch_size),
               "--epochs", str(args.epochs), "--warmup-steps", str(args.warmup_steps),
               "--limit", str(args.limit), "--seed", str(args.seed)]
        env = dict(os.environ)
        env.pop("OMP_WAIT_POLICY", None)
        if policy:
            env["OMP_WAIT_POLICY"] = policy
        print("+ %s%s" % ("OMP_WAIT_POLICY=%s " % policy if policy else "", " ".join(cmd)), flush=True)
        subprocess.run(cmd, check=True, env=env)
        with open(out) as f:
            res = json.load(f)
    res["omp_wait_policy"] = policy or "default"
    res["peer"] = "torch-eager" + ("-" + policy if policy else "")
    res["python"] = python or sys.executable
    return res


def run_torch(args):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    images = read_idx(find(args.data, "train-images-idx3-ubyte"))
    labels = read_idx(find(args.data, "train-labels-idx1-ubyte"))
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    n = images.shape[0]
    x_all = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (n, 1, 28, 28)
    y_all = torch.from_numpy(labels.astype(np.int64))
    model = lenet5_torch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    bs = args.batch_size

    def step(idx):
        logits = model(x_all[idx])
        loss = F.cross_entropy(logits, y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss, logits

    perm = torch.randperm(n)
    for s in range(min(args.warmup_steps, max(n // bs, 1))):
        step(perm[s * bs:(s + 1) * bs])
    epochs = []
    for e in range(args.epochs):
        t0 = time.perf_counter()
        c0 = time.process_time()
        perm = torch.randperm(n)
        loss_sum, correct = 0.0, 0
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            loss, logits = step(idx)
            loss_sum += float(loss.detach()) * idx.numel()
            correct += int((logits.detach().argmax(1) == y_all[idx]).sum())
        seconds = time.perf_counter() - t0
        cpu_seconds = time.process_time() - c0
        ep = {"epoch": e + 1, "seconds": seconds, "cpu_seconds": cpu_seconds,
              "images_per_second": n / seconds,
              "loss": loss_sum / n, "accuracy": correct / n}
        epochs.append(ep)
        print(f"torch CPU epoch {e + 1}: {seconds:.3f} s, {n / seconds:.0f} images/s, "
              f"loss {ep['loss']:.4f}, accuracy {ep['accuracy']:.4f}", flush=True)
    med = statistics.median(ep["seconds"] for ep in epochs)
    cpu = statistics.median(ep["cpu_seconds"] for ep in epochs)
    return {"peer": "torch-eager", "images_per_cpu_second": n / cpu, "device": "CPU (%d threads)" % torch.get_num_threads(),
            "torch_version": torch.__version__, "images": n, "epochs": epochs, "seconds": med,
            "train_images_per_second": n / med, "warmup_steps": args.warmup_steps}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minicnn", default=os.path.join(REPO, "build", "minicnn"),
                    help="the minicnn program (default build/minicnn)")
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per side")
    ap.add_argument("--warmup-steps", type=int, default=20, help="PyTorch warm-up steps")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="1 epoch on 10000 images")
    ap.add_argument("--json", help="also write {minicnn, torch} here (for bench/run.sh)")
    ap.add_argument("--no-results", action="store_true", help="do not write bench/results/")
    ap.add_argument("--torch-python", action="append", default=[],
                    help="another interpreter whose PyTorch also runs (both wait policies), e.g. "
                         "/work/torch2-venv/bin/python (PyTorch 2 from PyPI); repeatable")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat minicnn and every PyTorch run this many times, in turn; the "
                         "median round is reported (default 1)")
    ap.add_argument("--torch-worker", help=argparse.SUPPRESS)  # internal: run PyTorch, write JSON
    args = ap.parse_args()
    if args.torch_worker:
        with open(args.torch_worker, "w") as f:
            json.dump(run_torch(args), f)
        return 0
    if args.quick:
        args.epochs, args.limit = 1, args.limit or 10000
    if not os.access(args.minicnn, os.X_OK):
        sys.exit(f"train_cpu_vs_torch: {args.minicnn} is not an executable minicnn program "
                 "(build it: cmake --build build --target minicnn_program)")

    command = " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])
    started = datetime.datetime.now(datetime.timezone.utc)

    def one_round():
        mini = run_minicnn(args)
        torch_default = run_torch_process(args, None)
        torch_passive = run_torch_process(args, "passive")
        others = []  # PyTorch of other interpreters: the faster wait policy of each
        for py in args.torch_python:
            runs = [run_torch_process(args, None, py), run_torch_process(args, "passive", py)]
            best = max(runs, key=lambda r: r["train_images_per_second"])
            best["ratio_minicnn_over_this"] = (mini["train_images_per_second"] /
                                               best["train_images_per_second"])
            others.append({"python": py, "best": best, "runs": runs})
            print(f"PyTorch {best['torch_version']} ({py}): {best['train_images_per_second']:.0f} "
                  f"images/s ({best['omp_wait_policy']}); minicnn / it: "
                  f"{best['ratio_minicnn_over_this']:.2f}x", flush=True)
        return mini, torch_default, torch_passive, others

    # Rounds: minicnn and every PyTorch run in turn, again and again, so that each round's ratio
    # compares runs minutes apart at most; the round with the median ratio (to the last
    # interpreter's PyTorch, else Debian's) is reported, with every round's ratios beside it.
    rounds = []
    for r in range(args.rounds):
        if args.rounds > 1:
            print(f"round {r + 1} of {args.rounds}", flush=True)
        res = one_round()
        mini_r, td, tp, oth = res
        ref = oth[-1]["best"] if oth else max(td, tp, key=lambda x: x["train_images_per_second"])
        rounds.append((mini_r["train_images_per_second"] / ref["train_images_per_second"], res))
    ordered = sorted(rounds, key=lambda x: x[0])
    mini, torch_default, torch_passive, others = ordered[(len(ordered) - 1) // 2][1]
    round_ratios = [x[0] for x in rounds]
    if args.rounds > 1:
        print("ratio per round (minicnn / " + ("PyTorch " + others[-1]["best"]["torch_version"]
                                               if others else "PyTorch") + "): "
              + ", ".join("%.2f" % x for x in round_ratios) + "; median "
              + "%.2f" % statistics.median(round_ratios), flush=True)
    torch_res = max(torch_default, torch_passive, key=lambda r: r["train_images_per_second"])
    ratio = mini["train_images_per_second"] / torch_res["train_images_per_second"]
    cpu_ratio = mini["images_per_cpu_second"] / max(torch_default["images_per_cpu_second"],
                                                     torch_passive["images_per_cpu_second"])
    meta = {"date": started.isoformat(timespec="seconds"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "threads": args.threads, "commit": git_commit(),
            "command": command, "batch_size": args.batch_size, "epochs": args.epochs,
            "images": mini["images"], "data": args.data, "rounds": args.rounds,
            "ratio_per_round": round_ratios,
            "loadavg_at_end": os.getloadavg()}
    result = {"meta": meta, "minicnn": mini, "torch": torch_res, "torch_default": torch_default,
              "torch_passive": torch_passive, "torch_other": others,
              "ratio_minicnn_over_torch": ratio,
              "cpu_time_ratio_minicnn_over_torch": cpu_ratio}
    print(f"minicnn {mini['train_images_per_second']:.0f} images/s, PyTorch "
          f"{torch_default['train_images_per_second']:.0f} images/s (default), "
          f"{torch_passive['train_images_per_second']:.0f} images/s (OMP_WAIT_POLICY=passive): "
          f"ratio to the faster {ratio:.2f}x; per CPU-second {mini['images_per_cpu_second']:.0f} vs "
          f"{max(torch_default['images_per_cpu_second'], torch_passive['images_per_cpu_second']):.0f}"
          f" images: {cpu_ratio:.2f}x", flush=True)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"minicnn": mini, "torch": torch_default, "torch_passive": torch_passive,
                       **{f"torch{o['best']['torch_version'].split('+')[0]}": o["best"]
                          for o in others},
                       "meta": meta}, f, indent=1)
    if not args.no_results:
        stem = os.path.join(REPO, "bench", "results", started.strftime("%Y-%m-%d") + "-cpu-train")
        with open(stem + ".json", "w") as f:
            json.dump(result, f, indent=1)
        md = [f"# LeNet-5 training throughput on the CPU: minicnn vs PyTorch ({meta['date']})", "",
              f"- CPU: {meta['cpu']} ({meta['cores']} cores), {args.threads} threads for both sides",
              f"- commit: `{meta['commit']}`",
              f"- command: `{command}`",
              f"- minicnn: `{mini['command_line']}` ({mini['device']})",
              f"- PyTorch {torch_res['torch_version']} eager, torch.set_num_threads({args.threads}), "
              f"{args.warmup_steps} warm-up steps",
              f"- batch {args.batch_size}, {mini['images']} training images per epoch, data in memory, "
              f"fp32; statistic: median of {args.epochs} epochs",
              f"- load average at the end: {', '.join('%.2f' % x for x in meta['loadavg_at_end'])}",
              "", "| side | median epoch (s) | images/s | images per CPU-second | epochs (s) |",
              "|---|---|---|---|---|"]
        for name, r, eps in (("minicnn", mini, mini["history"]),
                             ("PyTorch (defaults)", torch_default, torch_default["epochs"]),
                             ("PyTorch (OMP_WAIT_POLICY=passive)", torch_passive,
                              torch_passive["epochs"])):
            md.append(f"| {name} | {r['seconds']:.2f} | {r['train_images_per_second']:.0f} | "
                      f"{r['images_per_cpu_second']:.0f} | "
                      + ", ".join("%.2f" % e["seconds"] for e in eps) + " |")
        for o in others:
            b = o["best"]
            md.append(f"| PyTorch {b['torch_version']} ({b['omp_wait_policy']}) | {b['seconds']:.2f} "
                      f"| {b['train_images_per_second']:.0f} | {b['images_per_cpu_second']:.0f} | "
                      + ", ".join("%.2f" % e["seconds"] for e in b["epochs"]) + " |")
        md += ["", f"minicnn / the faster PyTorch run: **{ratio:.2f}x** in images/s, "
               f"**{cpu_ratio:.2f}x** in images per CPU-second."]
        for o in others:
            md.append(f"minicnn / PyTorch {o['best']['torch_version']}: "
                      f"**{o['best']['ratio_minicnn_over_this']:.2f}x** in images/s.")
        if args.rounds > 1:
            md.append(f"Rounds: {args.rounds} (minicnn and every PyTorch run in turn); ratio per "
                      "round: " + ", ".join("%.2f" % x for x in round_ratios) + "; the table is "
                      "the median round's.")
        md.append("")
        with open(stem + ".md", "w") as f:
            f.write("\n".join(md))
        print(f"wrote {stem}.md and {stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
