// fuzz/safetensors_fuzzer.cpp — libFuzzer harness for the safetensors parser (host/safetensors.cpp).
//
// Each input is parsed as given. A file that parses must survive a round trip: serializing what
// was parsed and parsing that again gives the same metadata and tensors (names, dtypes, shapes,
// bytes), and the data of each tensor is exactly its shape's size. The only acceptable failure is
// minicnn::ArgumentError.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "minicnn/error.h"
#include "minicnn/export.h"

namespace {

bool same(const minicnn::Safetensors& a, const minicnn::Safetensors& b) {
    if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) return false;
    for (std::size_t i = 0; i < a.tensors.size(); ++i) {
        const minicnn::SafetensorsTensor& x = a.tensors[i];
        const minicnn::SafetensorsTensor& y = b.tensors[i];
        if (x.name != y.name || x.dtype != y.dtype || x.shape != y.shape || x.bytes != y.bytes)
            return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    minicnn::Safetensors st;
    try {
        st = minicnn::parse_safetensors(data, size, "fuzz-input");
    } catch (const minicnn::ArgumentError&) {
        return 0;
    }
    std::size_t bytes = 0;
    for (const auto& t : st.tensors) bytes += t.bytes.size();
    if (bytes > size) std::abort();  // the data came from the input
    const std::vector<std::uint8_t> again = minicnn::serialize_safetensors(st);
    const minicnn::Safetensors back =
        minicnn::parse_safetensors(again.data(), again.size(), "again");
    if (!same(st, back)) std::abort();
    return 0;
}
