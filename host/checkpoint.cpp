// host/checkpoint.cpp — the checkpoint format of minicnn/checkpoint.h: serialiser, validating
// parser, atomic save (host/file_io.h) and load.
//
// The parser trusts nothing: it checks the fixed header (magic, version, flags, file_size against
// the real size), then the CRC32 over everything before the trailer, then walks the entries with a
// cursor that checks each length against the bytes that remain before copying or allocating. A
// count field is never used to reserve memory; entries are appended as they are read, so a lying
// count fails at the first entry that does not fit.
#include "minicnn/checkpoint.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <unordered_set>

#include "file_io.h"

namespace minicnn {
namespace {

constexpr std::size_t kMagicLen = 8;
constexpr std::size_t kHeaderLen = 32;  // magic, version, flags, file_size, meta_count, array_count
constexpr std::size_t kTrailerLen = 4;  // CRC32
constexpr std::uint32_t kMaxRank = 8;

std::uint32_t dtype_code(DType dt) {
    switch (dt) {
        case DType::f32:
            return 0;
        case DType::f64:
            return 1;
        case DType::i32:
            return 2;
    }
    return 0xffffffffu;
}

bool dtype_from_code(std::uint32_t code, DType* dt) {
    switch (code) {
        case 0:
            *dt = DType::f32;
            return true;
        case 1:
            *dt = DType::f64;
            return true;
        case 2:
            *dt = DType::i32;
            return true;
        default:
            return false;
    }
}

std::string hex32(std::uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

// Printable rendering of a few raw bytes, for "found ..." messages.
std::string printable(const std::uint8_t* p, std::size_t n) {
    std::string s = "\"";
    for (std::size_t i = 0; i < n; ++i) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\') {
            s += static_cast<char>(p[i]);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", p[i]);
            s += buf;
        }
    }
    return s + "\"";
}

std::uint32_t crc32_of(const std::uint8_t* p, std::size_t n) {
    return static_cast<std::uint32_t>(crc32_z(crc32_z(0L, Z_NULL, 0), p, n));
}

// ---- little-endian writer ----------------------------------------------------------------------

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_bytes(std::vector<std::uint8_t>& out, const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    out.insert(out.end(), b, b + n);
}
void patch_u64(std::vector<std::uint8_t>& out, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::uint32_t get_u32(const std::uint8_t* p) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{p[i]} << (8 * i);
    return v;
}
std::uint64_t get_u64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{p[i]} << (8 * i);
    return v;
}

// ---- bounds-checked reader over [pos, end) -----------------------------------------------------

class Cursor {
public:
    Cursor(const std::uint8_t* data, std::size_t pos, std::size_t end, const std::string& name)
        : data_(data), pos_(pos), end_(end), name_(name) {}

    std::size_t pos() const { return pos_; }
    std::size_t left() const { return end_ - pos_; }

    // Checks that n more bytes exist for `what`; the error says how many there are.
    void need(std::uint64_t n, const std::string& what) const {
        MINICNN_REQUIRE(n <= left(), "checkpoint '" << name_ << "': corrupt entry: " << what
                                                    << " needs " << n << " bytes at offset " << pos_
                                                    << ", but only " << left()
                                                    << " remain before the checksum");
    }
    std::uint32_t u32(const std::string& what) {
        need(4, what);
        std::uint32_t v = get_u32(data_ + pos_);
        pos_ += 4;
        return v;
    }
    std::uint64_t u64(const std::string& what) {
        need(8, what);
        std::uint64_t v = get_u64(data_ + pos_);
        pos_ += 8;
        return v;
    }
    std::string str(std::uint64_t n, const std::string& what) {
        need(n, what);
        std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<std::size_t>(n));
        pos_ += static_cast<std::size_t>(n);
        return s;
    }
    void bytes(std::uint64_t n, const std::string& what, std::vector<std::uint8_t>& out) {
        need(n, what);
        out.assign(data_ + pos_, data_ + pos_ + n);
        pos_ += static_cast<std::size_t>(n);
    }

private:
    const std::uint8_t* data_;
    std::size_t pos_, end_;
    const std::string& name_;
};

std::string list_names(const std::vector<std::string>& names) {
    if (names.empty()) return "none";
    std::string s;
    for (std::size_t i = 0; i < names.size(); ++i) s += (i ? ", '" : "'") + names[i] + "'";
    return s;
}

// Checks one array's invariants; returns the expected byte count. `where` prefixes errors.
std::uint64_t check_array(const CheckpointArray& a, const std::string& where) {
    MINICNN_REQUIRE(!a.name.empty(), where << ": array with an empty name");
    MINICNN_REQUIRE(a.shape.size() <= kMaxRank, where << ": array '" << a.name << "' has rank "
                                                      << a.shape.size() << ", at most " << kMaxRank
                                                      << " is supported");
    const std::uint64_t limit = std::uint64_t{1} << 62;
    std::uint64_t numel = 1;
    for (std::int64_t d : a.shape) {
        MINICNN_REQUIRE(d >= 0, where << ": array '" << a.name
                                      << "' has a negative dimension in shape "
                                      << shape_str(a.shape));
        const std::uint64_t ud = static_cast<std::uint64_t>(d);
        MINICNN_REQUIRE(
            ud == 0 || numel <= limit / ud / 8,
            where << ": array '" << a.name << "' shape " << shape_str(a.shape) << " is too large");
        numel *= ud;
    }
    return numel * dtype_size(a.dtype);
}

}  // namespace

// ---- Checkpoint / CheckpointArray ---------------------------------------------------------------

CheckpointArray CheckpointArray::from_tensor(const std::string& name, const Tensor& t) {
    MINICNN_REQUIRE(t.defined(), "checkpoint array '" << name << "': the tensor is undefined");
    CheckpointArray a;
    a.name = name;
    a.dtype = t.dtype();
    a.shape = t.shape();
    const auto* p = static_cast<const std::uint8_t*>(t.raw());
    a.bytes.assign(p, p + t.nbytes());
    return a;
}

Tensor CheckpointArray::to_tensor() const {
    const std::uint64_t expected = check_array(*this, "checkpoint");
    MINICNN_REQUIRE(bytes.size() == expected, "checkpoint array '"
                                                  << name << "': shape " << shape_str(shape)
                                                  << " of " << dtype_name(dtype) << " needs "
                                                  << expected << " bytes, found " << bytes.size());
    Tensor t(shape, dtype);
    if (!bytes.empty()) std::memcpy(t.raw(), bytes.data(), bytes.size());
    return t;
}

void Checkpoint::set(const std::string& key, const std::string& value) {
    for (auto& kv : meta) {
        if (kv.first == key) {
            kv.second = value;
            return;
        }
    }
    meta.emplace_back(key, value);
}

void Checkpoint::add_array(CheckpointArray a) {
    for (auto& x : arrays) {
        if (x.name == a.name) {
            x = std::move(a);
            return;
        }
    }
    arrays.push_back(std::move(a));
}

bool Checkpoint::has(const std::string& key) const {
    for (const auto& kv : meta)
        if (kv.first == key) return true;
    return false;
}

bool Checkpoint::has_array(const std::string& name) const {
    for (const auto& a : arrays)
        if (a.name == name) return true;
    return false;
}

const std::string& Checkpoint::get(const std::string& key) const {
    std::vector<std::string> keys;
    for (const auto& kv : meta) {
        if (kv.first == key) return kv.second;
        keys.push_back(kv.first);
    }
    MINICNN_REQUIRE(false, "checkpoint has no metadata key '"
                               << key << "'; keys present: " << list_names(keys));
    throw ArgumentError("unreachable");
}

const CheckpointArray& Checkpoint::array(const std::string& name) const {
    std::vector<std::string> names;
    for (const auto& a : arrays) {
        if (a.name == name) return a;
        names.push_back(a.name);
    }
    MINICNN_REQUIRE(
        false, "checkpoint has no array '" << name << "'; arrays present: " << list_names(names));
    throw ArgumentError("unreachable");
}

// ---- serialise / parse --------------------------------------------------------------------------

std::vector<std::uint8_t> serialize_checkpoint(const Checkpoint& ck) {
    const char* where = "save_checkpoint";
    MINICNN_REQUIRE(ck.meta.size() <= 0xffffffffu && ck.arrays.size() <= 0xffffffffu,
                    where << ": too many entries");
    std::unordered_set<std::string> seen;
    std::vector<std::uint8_t> out;
    put_bytes(out, kCheckpointMagic, kMagicLen);
    put_u32(out, kCheckpointVersion);
    put_u32(out, 0);  // flags
    put_u64(out, 0);  // file_size, patched below
    put_u32(out, static_cast<std::uint32_t>(ck.meta.size()));
    put_u32(out, static_cast<std::uint32_t>(ck.arrays.size()));
    for (const auto& kv : ck.meta) {
        MINICNN_REQUIRE(!kv.first.empty(), where << ": metadata key is empty");
        MINICNN_REQUIRE(kv.first.size() <= 0xffffffffu, where << ": metadata key is too long");
        MINICNN_REQUIRE(seen.insert(kv.first).second,
                        where << ": metadata key '" << kv.first << "' appears twice");
        put_u32(out, static_cast<std::uint32_t>(kv.first.size()));
        put_bytes(out, kv.first.data(), kv.first.size());
        put_u64(out, kv.second.size());
        put_bytes(out, kv.second.data(), kv.second.size());
    }
    seen.clear();
    for (const auto& a : ck.arrays) {
        const std::uint64_t expected = check_array(a, where);
        MINICNN_REQUIRE(a.name.size() <= 0xffffffffu, where << ": array name is too long");
        MINICNN_REQUIRE(seen.insert(a.name).second,
                        where << ": array name '" << a.name << "' appears twice");
        MINICNN_REQUIRE(a.bytes.size() == expected,
                        where << ": array '" << a.name << "' of shape " << shape_str(a.shape)
                              << " and dtype " << dtype_name(a.dtype) << " needs " << expected
                              << " bytes, found " << a.bytes.size());
        put_u32(out, static_cast<std::uint32_t>(a.name.size()));
        put_bytes(out, a.name.data(), a.name.size());
        put_u32(out, dtype_code(a.dtype));
        put_u32(out, static_cast<std::uint32_t>(a.shape.size()));
        for (std::int64_t d : a.shape) put_u64(out, static_cast<std::uint64_t>(d));
        put_u64(out, a.bytes.size());
        put_bytes(out, a.bytes.data(), a.bytes.size());
    }
    patch_u64(out, 16, out.size() + kTrailerLen);
    put_u32(out, crc32_of(out.data(), out.size()));
    return out;
}

Checkpoint parse_checkpoint(const std::uint8_t* data, std::size_t size, const std::string& name) {
    static const std::uint8_t kEmpty[1] = {0};
    if (!data) {
        MINICNN_REQUIRE(size == 0, "checkpoint '" << name << "': null data with size " << size);
        data = kEmpty;
    }
    const std::string ck = "checkpoint '" + name + "'";
    const std::size_t m = std::min(size, kMagicLen);
    MINICNN_REQUIRE(std::memcmp(data, kCheckpointMagic, m) == 0,
                    ck << ": not a minicnn checkpoint: the file starts with " << printable(data, m)
                       << ", expected the magic \"" << kCheckpointMagic << "\"");
    MINICNN_REQUIRE(size >= kHeaderLen + kTrailerLen, ck << ": truncated: the file has " << size
                                                         << " bytes, a checkpoint has at least "
                                                         << kHeaderLen + kTrailerLen
                                                         << " (header and checksum)");

    const std::uint32_t version = get_u32(data + 8);
    MINICNN_REQUIRE(version != 0, ck << ": invalid format version 0");
    MINICNN_REQUIRE(version <= kCheckpointVersion,
                    ck << ": format version " << version << " is newer than this build of minicnn "
                       << "reads (up to version " << kCheckpointVersion
                       << "); load it with a newer minicnn");
    const std::uint32_t flags = get_u32(data + 12);
    MINICNN_REQUIRE(flags == 0,
                    ck << ": unknown flags " << hex32(flags) << " in the header, expected 0");
    const std::uint64_t file_size = get_u64(data + 16);
    MINICNN_REQUIRE(file_size <= size, ck << ": truncated: the header says the file has "
                                          << file_size << " bytes, found " << size << " ("
                                          << file_size - size << " missing)");
    MINICNN_REQUIRE(file_size == size, ck << ": trailing bytes: the header says the file has "
                                          << file_size << " bytes, found " << size << " ("
                                          << size - file_size << " extra)");
    const std::size_t body = size - kTrailerLen;
    const std::uint32_t stored = get_u32(data + body);
    const std::uint32_t computed = crc32_of(data, body);
    MINICNN_REQUIRE(stored == computed, ck << ": checksum mismatch: stored CRC32 " << hex32(stored)
                                           << ", computed " << hex32(computed) << " over " << body
                                           << " bytes; the file is corrupt");

    const std::uint32_t meta_count = get_u32(data + 24);
    const std::uint32_t array_count = get_u32(data + 28);
    Cursor cur(data, kHeaderLen, body, name);
    Checkpoint out;
    std::unordered_set<std::string> seen;
    for (std::uint32_t i = 0; i < meta_count; ++i) {
        const std::string e = "metadata entry " + std::to_string(i);
        const std::uint32_t klen = cur.u32(e + " key length");
        MINICNN_REQUIRE(klen > 0, ck << ": " << e << " has an empty key");
        std::string key = cur.str(klen, e + " key");
        const std::uint64_t vlen = cur.u64(e + " ('" + key + "') value length");
        std::string value = cur.str(vlen, e + " ('" + key + "') value");
        MINICNN_REQUIRE(seen.insert(key).second,
                        ck << ": metadata key '" << key << "' appears twice");
        out.meta.emplace_back(std::move(key), std::move(value));
    }
    seen.clear();
    for (std::uint32_t i = 0; i < array_count; ++i) {
        const std::string e = "array " + std::to_string(i);
        const std::uint32_t nlen = cur.u32(e + " name length");
        MINICNN_REQUIRE(nlen > 0, ck << ": " << e << " has an empty name");
        CheckpointArray a;
        a.name = cur.str(nlen, e + " name");
        const std::string ea = e + " ('" + a.name + "')";
        const std::uint32_t code = cur.u32(ea + " dtype");
        MINICNN_REQUIRE(dtype_from_code(code, &a.dtype),
                        ck << ": " << ea << " has unknown dtype code " << code
                           << ", expected 0 (float32), 1 (float64) or 2 (int32)");
        const std::uint32_t rank = cur.u32(ea + " rank");
        MINICNN_REQUIRE(rank <= kMaxRank, ck << ": " << ea << " has rank " << rank << ", at most "
                                             << kMaxRank << " is supported");
        for (std::uint32_t d = 0; d < rank; ++d)
            a.shape.push_back(static_cast<std::int64_t>(cur.u64(ea + " dimension")));
        const std::uint64_t expected = check_array(a, ck);
        const std::uint64_t nbytes = cur.u64(ea + " byte count");
        MINICNN_REQUIRE(nbytes == expected, ck << ": " << ea << " of shape " << shape_str(a.shape)
                                               << " and dtype " << dtype_name(a.dtype) << " needs "
                                               << expected << " bytes, the file says " << nbytes);
        cur.bytes(nbytes, ea + " data", a.bytes);
        MINICNN_REQUIRE(seen.insert(a.name).second,
                        ck << ": array '" << a.name << "' appears twice");
        out.arrays.push_back(std::move(a));
    }
    MINICNN_REQUIRE(cur.left() == 0, ck << ": " << cur.left() << " unexpected bytes at offset "
                                        << cur.pos()
                                        << " after the last array (header: " << meta_count
                                        << " metadata entries, " << array_count << " arrays)");
    return out;
}

// ---- files --------------------------------------------------------------------------------------

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
    MINICNN_REQUIRE(!path.empty(), "save_checkpoint: empty path");
    write_file_atomic(path, serialize_checkpoint(ck), "save_checkpoint", "checkpoint");
}

Checkpoint load_checkpoint(const std::string& path) {
    const std::vector<std::uint8_t> data = read_file(path, "checkpoint file");
    return parse_checkpoint(data.data(), data.size(), path);
}

}  // namespace minicnn
