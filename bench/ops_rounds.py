#!/usr/bin/python3
"""bench/ops_rounds.py — minicnn's C++ op rows (minicnn_bench --cpu) against PyTorch (torch_ops.py),
paired in rounds.

bench/run.sh times minicnn's ops and PyTorch's in separate processes, minutes apart. On a machine
whose speed drifts by tens of percent from one minute to the next (this VM does), a ratio near 1 is
then the drift, not the libraries. This runs the two alternately, --rounds times, on the cases
--filter selects (minicnn_bench's --filter: a substring of layer ids such as lenet_conv2_b256),
validates PyTorch against minicnn's outputs first (torch_ops.py does), and prints every round's
ratio (PyTorch median / minicnn median; above 1 minicnn is faster) and their median, per row. The
launcher rows (conv_fwd, ...) and the C++ API rows (api_conv_fwd, ...) are both joined to PyTorch's
op of the same name without the api_ prefix, as bench/report.py joins them.

  python3 bench/ops_rounds.py --filter lenet_conv2_b256 --rounds 5 \\
      --torch-python /work/torch2-venv/bin/python [--bench build/bench/minicnn_bench]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rows(path):
    with open(path) as f:
        return {(r["layer"], r["batch"], r["op"]): r for r in json.load(f)["results"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--filter", required=True, help="minicnn_bench --filter (layer id substring)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bench", default=os.path.join(REPO, "build", "bench", "minicnn_bench"))
    ap.add_argument("--torch-python", default="/usr/bin/python3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.3)
    args = ap.parse_args()
    if args.rounds < 1:
        sys.exit("ops_rounds.py: --rounds must be at least 1")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    torch_ops = os.path.join(REPO, "bench", "torch_ops.py")
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "dump")
        os.mkdir(dump)
        subprocess.run([args.bench, "--cpu", "--dump", dump, "--filter", args.filter], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(dump, "manifest.json")) as f:
            if not json.load(f).get("layers"):
                sys.exit(f"ops_rounds.py: --filter {args.filter!r} selects no CPU case")
        for r in range(args.rounds):
            m_json, t_json = os.path.join(tmp, "m.json"), os.path.join(tmp, "t.json")
            subprocess.run([args.bench, "--cpu", "--filter", args.filter, "--min-time",
                            str(args.min_time), "--json", m_json], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run([args.torch_python, torch_ops, "--data", dump, "--json", t_json,
                            "--threads", str(args.threads), "--min-time", str(args.min_time)],
                           env=env, check=True, stdout=subprocess.DEVNULL)
            mine, peer = rows(m_json), rows(t_json)
            for (layer, batch, op), m in mine.items():
                p = peer.get((layer, batch, op[4:] if op.startswith("api_") else op))
                if p is None:
                    continue
                if not p.get("validated", False):
                    sys.exit(f"ops_rounds.py: PyTorch disagrees with minicnn on {layer} {op}")
                ratios.setdefault((layer, batch, op), []).append(p["median_ms"] / m["median_ms"])
    print(f"minicnn_bench --cpu against {args.torch_python} bench/torch_ops.py, {args.threads} "
          f"threads, {args.rounds} alternating rounds (ratio = PyTorch / minicnn, medians per "
          f"round)")
    print(f"{'layer':14s} {'batch':>5s} {'op':16s} {'rounds':40s} {'median':>6s}")
    for (layer, batch, op), rs in sorted(ratios.items()):
        per = " ".join(f"{x:.2f}" for x in rs)
        print(f"{layer:14s} {batch:5d} {op:16s} {per:40s} {statistics.median(rs):6.2f}")


if __name__ == "__main__":
    main()
