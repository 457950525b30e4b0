// tools/cli.h — the `minicnn` program (tools/minicnn.cpp is a one-line main around run_cli). Built
// as the static library minicnn_cli, which the program and tests/test_cli.cpp link; not part of
// libminicnn and not installed.
//
//   minicnn train    [--data DIR] [--epochs N] [--batch-size B] [--lr X] [--seed S]
//                    [--device auto|cpu|cuda[:N]] [--no-cuda-graphs] [--checkpoint FILE]
//                    [--resume] [--metrics FILE.csv] [--json FILE] [--validation N] [--limit N]
//   minicnn evaluate --checkpoint FILE [--data DIR] [--device ...] [--json FILE]
//   minicnn predict  --checkpoint FILE [--data DIR] [--device ...] --index I [I ...]
//   minicnn export   --checkpoint FILE --output FILE.safetensors|FILE.onnx
//   minicnn --help | minicnn <command> --help
//
// Exit status: 0 on success or help (on `out`), 2 for a usage error (one line naming the argument,
// on `err`), 1 when the command itself fails (bad data file, training diverged, device error; one
// line on `err`). argv[0] is the program's name.
#pragma once

#include <ostream>

namespace minicnn {

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace minicnn
