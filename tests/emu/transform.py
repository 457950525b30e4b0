#!/usr/bin/env python3
# tests/emu/transform.py — rewrites a minicnn .cu file into C++ that the CPU emulator
# (tests/emu/include/cuda_runtime.h, tests/emu/device.cpp) compiles and checks. The rewrite is
# small on purpose, so that what runs is the kernel as written; line numbers are kept (a #line
# directive names the original file), so reports and compiler errors point at the .cu source.
#
#   k<<<grid, block, smem, stream>>>(args);
#       -> ::emu::launch("k", __FILE__, __LINE__,
#                        [emu_args_ = std::make_tuple(args)] { std::apply(k, emu_args_); }, ...);
#          (the arguments are evaluated at the launch and held by value, as a launch and a
#          captured graph do)
#   extern __shared__ T name[];
#       -> T* name = static_cast<T*>(::emu::dynamic_smem());
#   __shared__ T name[A][B];
#       -> T (&name)[A][B] = *static_cast<T(*)[A][B]>(::emu::static_smem(id, sizeof(T[A][B]), alignof(T)));
#   __global__ void __launch_bounds__(B) k(...) {     (or without __launch_bounds__: B is 0)
#       -> __global__ void __launch_bounds__(B) k(...) {
#              if (::emu::kernel_probe(B, __PRETTY_FUNCTION__)) return;
#              ::emu::KernelScope emu_kernel_scope_;
#          (a launch first calls the kernel in probe mode, on the host, to learn its bound and
#          its instantiation: B is evaluated where the kernel's template parameters are in scope;
#          the checker looks at memory accesses inside kernel bodies only)
#
# Usage: transform.py input.cu output.cpp [display-name]
import re
import sys

src_path, out_path = sys.argv[1], sys.argv[2]
display = sys.argv[3] if len(sys.argv) > 3 else src_path
src = open(src_path).read()


def keep_lines(original, replacement):
    """The replacement followed by as many newlines as the original spanned."""
    return replacement + "\n" * original.count("\n")


# Dynamic shared memory.
src, n_dyn = re.subn(
    r"extern\s+__shared__\s+(?:__align__\(\d+\)\s+)?([\w:]+)\s+(\w+)\s*\[\s*\]\s*;",
    lambda m: "%s* %s = static_cast<%s*>(::emu::dynamic_smem());" % (m.group(1), m.group(2), m.group(1)),
    src)

# Static shared memory, one slot id per declaration.
slot = [0]


def static_shared(m):
    t, name, dims = m.group(1), m.group(2), m.group(3)
    slot[0] += 1
    return keep_lines(m.group(0), "%s (&%s)%s = *static_cast<%s(*)%s>(::emu::static_smem(%d, sizeof(%s%s), alignof(%s)));" % (
        t, name, dims, t, dims, slot[0], t, dims, t))


src = re.sub(r"__shared__\s+(?:__align__\(\d+\)\s+)?([\w:]+)\s+(\w+)\s*((?:\[[^\]]+\])+)\s*;",
             static_shared, src)

# Kernel bodies open with the probe and a KernelScope.


def launch_bound(text):
    """The first argument of a __launch_bounds__(...) at the start of text, or "0"."""
    m = re.match(r"\s*__launch_bounds__\s*\(", text)
    if not m:
        return "0"
    depth, start, i = 0, m.end(), m.end()
    while True:
        c = text[i]
        if c in "(<":
            depth += 1
        elif c in ")>":
            if depth == 0:
                break
            depth -= 1
        elif c == "," and depth == 0:
            break
        i += 1
    return one_line(text[start:i])


def one_line(text):
    return re.sub(r"\s+", " ", re.sub(r"//[^\n]*", "", text)).strip()


out, pos, kernels = [], 0, 0
for m in re.finditer(r"__global__\s+void\b", src):
    if m.start() < pos:
        continue
    brace = src.index("{", m.end())
    out.append(src[pos:brace + 1])
    out.append(" if (::emu::kernel_probe(unsigned(%s), __PRETTY_FUNCTION__)) return;"
               " ::emu::KernelScope emu_kernel_scope_;" % launch_bound(src[m.end():brace]))
    pos = brace + 1
    kernels += 1
out.append(src[pos:])
src = "".join(out)

# Launches.
launch = re.compile(r"(\b[\w:]+(?:\s*<[^<>;]*>)?)\s*<<<(.*?)>>>\s*\((.*?)\)\s*;", re.S)
count = [0]


def rep(m):
    count[0] += 1
    kernel, config, args = (one_line(m.group(i)) for i in (1, 2, 3))
    # The arguments are evaluated here, at the launch, as CUDA does, and the closure keeps their
    # values: an argument such as *p must not be read later, when a replayed graph runs it.
    return keep_lines(m.group(0), '::emu::launch("%s", __FILE__, __LINE__, [emu_args_ = std::make_tuple(%s)] '
                      '{ std::apply(%s, emu_args_); }, %s);' % (kernel, args, kernel, config))


src = launch.sub(rep, src)
if count[0] == 0 and kernels > 0:
    sys.exit(f"{src_path}: kernels but no launch found")
open(out_path, "w").write('#line 1 "%s"\n' % display + src)
