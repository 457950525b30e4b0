// minicnn/idx.h — reading MNIST / Fashion-MNIST IDX files (raw or gzip) into host memory.
//
// IDX format: a big-endian header, then unsigned bytes.
//   images: magic 0x00000803, count, rows, cols (u32 each), then count*rows*cols pixels, row-major;
//   labels: magic 0x00000801, count (u32), then count labels.
// A file that starts with the gzip magic (1f 8b) is decompressed through zlib on the fly; anything
// else is read as raw IDX. Everything is validated and every error names the file and says what was
// expected and what was found: a missing file, a truncated header, a wrong magic (found and
// expected, in hex), a zero dimension, a payload shorter than the header announces, trailing bytes,
// bad gzip data. The payload length is computed in 64 bits from the header and compared with the
// real size before anything is allocated; gzip data is inflated in chunks with a hard cap of the
// announced size + 1 byte, so a header that lies about its count cannot make the reader allocate
// more than the data holds. All errors are minicnn::ArgumentError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "minicnn/tensor.h"

namespace minicnn {

constexpr std::uint32_t kIdxImagesMagic = 0x00000803;  // ubyte, 3 dimensions
constexpr std::uint32_t kIdxLabelsMagic = 0x00000801;  // ubyte, 1 dimension

struct IdxImages {
    std::int64_t count = 0, rows = 0, cols = 0;
    std::vector<std::uint8_t> pixels;  // (count, rows, cols), row-major
};

// Files on disk (raw or gzip).
IdxImages read_idx_images(const std::string& path);
std::vector<std::uint8_t> read_idx_labels(const std::string& path);

// The same parsers on bytes in memory (raw or gzip); `name` is used in error messages. Entry points
// for the fuzzers and for callers that already hold the file's bytes.
IdxImages parse_idx_images(const std::uint8_t* data, std::size_t size, const std::string& name);
std::vector<std::uint8_t> parse_idx_labels(const std::uint8_t* data, std::size_t size,
                                           const std::string& name);

// A labelled image set, kept 8-bit: pixels (n, h, w, c) NHWC as stored in the file (IDX: c = 1;
// CIFAR-10, minicnn/cifar.h: 32x32x3), labels in [0, 10) as int32. The model sees a pixel v as
// detail::pixel_to_unit(v) = v / 255.0f (minicnn/detail/pixel.h), computed as each batch is
// gathered (Trainer, DataView::pixels), so a data set takes a quarter of the memory a float32 copy
// would, on the host and on a GPU. unit_images() makes that float32 copy when one is wanted.
struct Dataset {
    std::vector<std::uint8_t> pixels;  // (n, h, w, c)
    Shape image_shape;                 // (h, w, c)
    std::vector<std::int32_t> labels;  // (n,)

    std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
    std::int64_t sample_numel() const { return shape_numel(image_shape); }
    Shape shape() const;  // (n, h, w, c)
};

// The images of `ds` as float32 (n, h, w, c) scaled to [0, 1] by detail::pixel_to_unit.
Tensor unit_images(const Dataset& ds);

// Builds a Dataset from parsed images and labels: checks that the counts agree, that every label is
// below 10, and (when expect_28x28) that the images are 28x28. `what` names the source in errors.
// The pixels move into the Dataset (pass std::move(images) to avoid a copy).
Dataset make_dataset(IdxImages images, const std::vector<std::uint8_t>& labels,
                     const std::string& what, bool expect_28x28 = true);

// Loads <dir>/<prefix>-images-idx3-ubyte[.gz] and <dir>/<prefix>-labels-idx1-ubyte[.gz] (prefix
// "train" or "t10k"; the raw file is preferred when both exist; the "<prefix>-images.idx3-ubyte"
// spelling is accepted too) and validates them as make_dataset does.
Dataset load_idx_dataset(const std::string& dir, const std::string& prefix,
                         bool expect_28x28 = true);

// Whether <dir> holds an images file of `prefix` under any of the names load_idx_dataset accepts.
bool has_idx_images(const std::string& dir, const std::string& prefix);

// Carves the last n examples off `ds` and returns them (e.g. the exercise's 50k/10k
// train/validation split of the 60k training set: split_tail(train, 10000)). `ds` keeps the first
// size() - n examples. n must be in [0, ds.size()): at least one example stays in `ds`; asking for
// more is an ArgumentError naming both counts.
Dataset split_tail(Dataset& ds, std::int64_t n);

}  // namespace minicnn
