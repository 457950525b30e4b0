// fuzz/idx_fuzzer.cpp — libFuzzer harness for the IDX parsers (host/idx.cpp).
//
// Feeds the input, raw or gzip (the parser detects 1f 8b), to both parse_idx_images and
// parse_idx_labels. A well-formed images file is also turned into a Dataset (all labels 0, any
// image size) to exercise the pixel conversion. The only acceptable failure is
// minicnn::ArgumentError; anything else (another exception, a sanitizer report, a crash, a leak) is
// a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "minicnn/error.h"
#include "minicnn/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        minicnn::IdxImages im = minicnn::parse_idx_images(data, size, "fuzz-input");
        // Invariants of a successful parse.
        if (im.count <= 0 || im.rows <= 0 || im.cols <= 0 ||
            im.pixels.size() != static_cast<std::size_t>(im.count * im.rows * im.cols))
            std::abort();
        std::vector<std::uint8_t> labels(static_cast<std::size_t>(im.count), 0);
        minicnn::Dataset ds = minicnn::make_dataset(im, labels, "fuzz-input", false);
        if (ds.size() != im.count) std::abort();
        if (ds.size() > 1) {
            minicnn::Dataset tail = minicnn::split_tail(ds, 1);
            if (tail.size() != 1 || ds.size() != im.count - 1) std::abort();
        }
    } catch (const minicnn::ArgumentError&) {
    }
    try {
        std::vector<std::uint8_t> labels = minicnn::parse_idx_labels(data, size, "fuzz-input");
        if (labels.empty()) std::abort();
    } catch (const minicnn::ArgumentError&) {
    }
    return 0;
}
