#!/usr/bin/env python3
# cuda/emu/transform.py — rewrites a minicnn .cu file into C++ that the CPU emulator
# (cuda/emu/include/cuda_runtime.h) can compile: `kernel<<<grid, block, smem, stream>>>(args);`
# becomes `::emu::launch([&] { kernel(args); }, grid, block, smem, stream);` and the dynamic shared
# memory declaration becomes a pointer to the emulator's per-launch buffer.
# With --trace, the conv launchers also print the chunk sizes they choose (to check that a test
# reaches every chunking path).
import re
import sys

trace = "--trace" in sys.argv
args = [a for a in sys.argv[1:] if a != "--trace"]
src = open(args[0]).read()
src = src.replace("extern __shared__ float smem[];", "float* smem = ::emu::dyn_smem;")
pat = re.compile(r"(\b[\w:]+(?:\s*<[^<>;]*>)?)\s*<<<(.*?)>>>\s*\((.*?)\);", re.S)
count = 0


def rep(m):
    global count
    count += 1
    return "::emu::launch([&] { %s(%s); }, %s);" % (m.group(1), m.group(3), m.group(2))


src = pat.sub(rep, src)
if trace:
    src = src.replace(
        "    // The kernel lays out each chunk with its actual sizes; the first chunk is the largest.",
        '    fprintf(stderr, "fwd<%d,%d,%d> kh=%d kw=%d c=%ld: AR=%d AQ=%d CC=%d\\n", TH, TW, KG, '
        "g.kh, g.kw, (long)g.c, ch.ar, ch.aq, ch.cc);")
    src = src.replace(
        "    const int d_tile_floats =",
        '    fprintf(stderr, "data<%d,%d,%d> kh=%d kw=%d k=%ld: AR=%d AQ=%d KC=%d\\n", TH, TW, CG, '
        "g.kh, g.kw, (long)g.k, ch.ar, ch.aq, ch.cc);\n    const int d_tile_floats =")
    src = "#include <cstdio>\n" + src
if count == 0:
    sys.exit(f"{args[0]}: no kernel launch found")
open(args[1], "w").write(src)
