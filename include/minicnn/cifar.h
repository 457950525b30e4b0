// minicnn/cifar.h — the CIFAR-10 binary version, and a data directory whose format (IDX or
// CIFAR-10) is found by itself.
//
// CIFAR-10 binary ("cifar-10-batches-bin"): data_batch_1.bin ... data_batch_N.bin (training, any N,
// taken in the order of their numbers, which must run 1..N without a gap) and test_batch.bin. Each
// file is a run of 3,073-byte records: a label byte (a class in [0, 10)), then the R, G and B planes
// of a 32x32 image, 1,024 bytes each, row-major. The record count is the file's size / 3,073; a size
// that is not a multiple is an error naming the file and its size, and a bad label names the file,
// the record and the value. Images become (n, 32, 32, 3) NHWC 8-bit pixels, scaled to [0, 1]
// (/ 255) as batches are gathered, as IDX images are (minicnn/idx.h: Dataset). All errors are minicnn::ArgumentError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "minicnn/idx.h"

namespace minicnn {

constexpr std::int64_t kCifarSide = 32;
constexpr std::int64_t kCifarRecordBytes = 1 + 3 * kCifarSide * kCifarSide;  // 3,073

// One CIFAR-10 binary file, on disk or in memory (`name` is used in errors).
Dataset read_cifar_batch(const std::string& path);
Dataset parse_cifar_batch(const std::uint8_t* data, std::size_t size, const std::string& name);

// <dir>/data_batch_1.bin ... data_batch_N.bin concatenated in order (split "train") or
// <dir>/test_batch.bin (split "test").
Dataset load_cifar_dataset(const std::string& dir, const std::string& split);

// What a data directory holds: IDX (train-images-idx3-ubyte[.gz], ... or the t10k files) or the
// CIFAR-10 binary version (data_batch_*.bin or test_batch.bin). A directory with neither (or both)
// is an error that says what was looked for.
enum class DataFormat { idx, cifar10 };
DataFormat detect_data_format(const std::string& dir);
const char* data_format_name(DataFormat f);  // "IDX", "CIFAR-10 binary"

// The training ("train") or test ("test") set of a data directory in whichever format it holds:
// load_idx_dataset(dir, "train" / "t10k") or load_cifar_dataset(dir, "train" / "test").
Dataset load_dataset(const std::string& dir, const std::string& split);

}  // namespace minicnn
