// fuzz/checkpoint_fuzzer.cpp — libFuzzer harness for the checkpoint parser (host/checkpoint.cpp).
//
// Random bytes almost never carry a valid CRC32, so each input is parsed twice: as given (the
// checksum path), and with its file_size field and trailing CRC32 rewritten to match, which lets
// the fuzzer reach the structural checks behind the checksum. A checkpoint that parses must survive
// a round trip: serialize_checkpoint(parse(x)) == x, and every array converts to a Tensor. The only
// acceptable failure is minicnn::ArgumentError.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "minicnn/checkpoint.h"
#include "minicnn/error.h"

namespace {

void check(const std::uint8_t* data, std::size_t size) {
    try {
        minicnn::Checkpoint ck = minicnn::parse_checkpoint(data, size, "fuzz-input");
        const std::vector<std::uint8_t> again = minicnn::serialize_checkpoint(ck);
        if (again.size() != size || std::memcmp(again.data(), data, size) != 0) std::abort();
        for (const auto& a : ck.arrays) {
            minicnn::Tensor t = a.to_tensor();
            if (t.nbytes() != a.bytes.size()) std::abort();
        }
    } catch (const minicnn::ArgumentError&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    check(data, size);
    if (size >= 36) {
        std::vector<std::uint8_t> fixed(data, data + size);
        for (int i = 0; i < 8; ++i)
            fixed[16 + i] = static_cast<std::uint8_t>(std::uint64_t{size} >> (8 * i));
        const std::size_t body = size - 4;
        const std::uint32_t crc =
            static_cast<std::uint32_t>(crc32_z(crc32_z(0L, Z_NULL, 0), fixed.data(), body));
        for (int i = 0; i < 4; ++i) fixed[body + i] = static_cast<std::uint8_t>(crc >> (8 * i));
        check(fixed.data(), fixed.size());
    }
    return 0;
}
