// tools/minicnn.cpp — the `minicnn` program: train, evaluate and predict with LeNet-5 on IDX data.
// Everything is in tools/cli.cpp (the minicnn_cli library), so the tests can drive the same code.
#include <iostream>

#include "cli.h"

int main(int argc, char** argv) {
    return minicnn::run_cli(argc, argv, std::cout, std::cerr);
}
