// minicnn/checkpoint.h — versioned binary checkpoints: named arrays plus string metadata, CRC32
// checked, written atomically.
//
// File format, version 1 (all integers little-endian):
//   offset 0   "MCNNCKPT"                      8-byte magic
//          8   u32 version                     kCheckpointVersion; a newer one is refused by name
//         12   u32 flags                       0 (reserved)
//         16   u64 file_size                   the whole file, checksum included
//         24   u32 meta_count, u32 array_count
//         32   meta_count x { u32 key_len, key, u64 value_len, value }        (UTF-8 / any bytes)
//              array_count x { u32 name_len, name, u32 dtype, u32 rank, rank x i64 dim,
//                              u64 nbytes, nbytes of data }                    (dtype: DType code)
//   file_size - 4: u32 CRC32 (zlib) of every byte before it.
// Keys and array names are unique and non-empty. nbytes must equal the product of the dims times
// the dtype's size. The loader checks the magic, the version, file_size against the real size, the
// checksum, and every length against the bytes that remain before it allocates anything; every
// error names the file and says what was expected and what was found (ArgumentError).
//
// save_checkpoint writes "<path>.tmp.<pid>", flushes and fsyncs it, renames it over `path` and
// fsyncs the directory: a reader sees the old checkpoint or the new one, never a mix. If anything
// fails the temporary file is removed, the previous checkpoint is left untouched, and an
// ArgumentError says which step failed and why.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "minicnn/tensor.h"

namespace minicnn {

constexpr char kCheckpointMagic[9] = "MCNNCKPT";
constexpr std::uint32_t kCheckpointVersion = 1;

struct CheckpointArray {
    std::string name;
    DType dtype = DType::f32;
    Shape shape;
    std::vector<std::uint8_t> bytes;  // shape_numel(shape) * dtype_size(dtype) bytes, native order

    // Copies a defined host tensor (any dtype) into an array; and back, checking dtype and shape.
    static CheckpointArray from_tensor(const std::string& name, const Tensor& t);
    Tensor to_tensor() const;
};

struct Checkpoint {
    std::vector<std::pair<std::string, std::string>> meta;  // in insertion order, unique keys
    std::vector<CheckpointArray> arrays;                    // in insertion order, unique names

    // Adds or replaces a metadata entry / an array.
    void set(const std::string& key, const std::string& value);
    void add_array(CheckpointArray a);
    void add_tensor(const std::string& name, const Tensor& t) {
        add_array(CheckpointArray::from_tensor(name, t));
    }

    bool has(const std::string& key) const;
    bool has_array(const std::string& name) const;
    // Throw ArgumentError naming the missing key / array and listing those present.
    const std::string& get(const std::string& key) const;
    const CheckpointArray& array(const std::string& name) const;
};

// Serialises to the format above (in memory) / parses it from memory; `name` is used in errors.
std::vector<std::uint8_t> serialize_checkpoint(const Checkpoint& ck);
Checkpoint parse_checkpoint(const std::uint8_t* data, std::size_t size, const std::string& name);

void save_checkpoint(const std::string& path, const Checkpoint& ck);  // atomic, see above
Checkpoint load_checkpoint(const std::string& path);

}  // namespace minicnn
