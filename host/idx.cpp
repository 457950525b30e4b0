// host/idx.cpp — IDX reader (MNIST / Fashion-MNIST), raw or gzip, with validation before
// allocation.
//
// Layout: a Reader yields the undecoded bytes of a file (raw file, raw memory, or a gzip stream
// being inflated from memory). read_idx() reads the big-endian header through it, checks the magic
// and the dimensions, computes the payload length in 64 bits and then:
//   - raw data: compares header + payload with the real length before allocating anything;
//   - gzip data: the real length is unknown until the stream is inflated, so the payload is
//     inflated in 1 MiB chunks into a growing buffer, with a hard cap of the announced payload
//     + 1 byte. The buffer only ever holds bytes the stream really produced, so a header that
//     lies about its count (2^31 - 1 images in a 100-byte file) costs nothing; one byte past the
//     cap means trailing data.
// A gzip file is read into memory compressed (bounded by its real size on disk) and inflated from
// there; multi-member gzip files (concatenated streams) are accepted, as gzip(1) accepts them.
#include "minicnn/idx.h"

#include "minicnn/detail/pixel.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>

namespace minicnn {
namespace {

std::string hex32(std::uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

std::uint32_t load_be32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}

bool has_gzip_magic(const std::uint8_t* data, std::size_t size) {
    return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

// A forward-only source of the (decoded) bytes of one IDX file.
class Reader {
public:
    virtual ~Reader() = default;
    // Reads up to n bytes into dst; returns fewer than n only at the end of the data.
    virtual std::size_t read(std::uint8_t* dst, std::size_t n) = 0;
    // The total length of the data when it is known without reading it (raw data); -1 for gzip.
    virtual std::int64_t total_size() const = 0;
};

class MemoryReader final : public Reader {
public:
    MemoryReader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
    std::size_t read(std::uint8_t* dst, std::size_t n) override {
        std::size_t k = std::min(n, size_ - pos_);
        if (k) std::memcpy(dst, data_ + pos_, k);
        pos_ += k;
        return k;
    }
    std::int64_t total_size() const override { return static_cast<std::int64_t>(size_); }

private:
    const std::uint8_t* data_;
    std::size_t size_, pos_ = 0;
};

class FileReader final : public Reader {
public:
    FileReader(std::FILE* f, std::int64_t size, const std::string& name)
        : f_(f), size_(size), name_(name) {}
    std::size_t read(std::uint8_t* dst, std::size_t n) override {
        std::size_t k = n ? std::fread(dst, 1, n, f_) : 0;
        MINICNN_REQUIRE(k == n || !std::ferror(f_),
                        "IDX file '" << name_ << "': read error: " << std::strerror(errno));
        return k;
    }
    std::int64_t total_size() const override { return size_; }

private:
    std::FILE* f_;
    std::int64_t size_;
    const std::string& name_;
};

// Inflates gzip data held in memory: one member or several concatenated ones.
class GzipReader final : public Reader {
public:
    GzipReader(const std::uint8_t* data, std::size_t size, const std::string& name)
        : data_(data), size_(size), name_(name) {
        std::memset(&zs_, 0, sizeof zs_);
        int rc = inflateInit2(&zs_, 15 + 16);  // 15-bit window, gzip wrapper only
        if (rc != Z_OK)
            throw Error("IDX file '" + name + "': zlib inflateInit2 failed: " + zError(rc));
    }
    ~GzipReader() override { inflateEnd(&zs_); }
    GzipReader(const GzipReader&) = delete;
    GzipReader& operator=(const GzipReader&) = delete;

    std::size_t read(std::uint8_t* dst, std::size_t n) override {
        std::size_t produced = 0;
        while (produced < n && !finished_) {
            if (zs_.avail_in == 0 && fed_ < size_) {
                std::size_t k = std::min<std::size_t>(size_ - fed_, 1u << 30);
                zs_.next_in = const_cast<Bytef*>(data_ + fed_);
                zs_.avail_in = static_cast<uInt>(k);
                fed_ += k;
            }
            std::size_t want = std::min<std::size_t>(n - produced, 1u << 30);
            zs_.next_out = dst + produced;
            zs_.avail_out = static_cast<uInt>(want);
            int rc = inflate(&zs_, Z_NO_FLUSH);
            std::size_t got = want - zs_.avail_out;
            produced += got;
            inflated_ += got;
            if (rc == Z_STREAM_END) {
                std::size_t left = input_left();
                if (left == 0) {
                    finished_ = true;
                } else if (left >= 2 && zs_.next_in[0] == 0x1f && zs_.next_in[1] == 0x8b) {
                    inflateReset(&zs_);  // another gzip member follows
                } else {
                    MINICNN_REQUIRE(false, "IDX file '"
                                               << name_ << "': " << left
                                               << " bytes of trailing garbage after the end "
                                                  "of the gzip stream (expected the end of "
                                                  "the file or another gzip member)");
                }
            } else if (rc == Z_BUF_ERROR && input_left() == 0) {
                MINICNN_REQUIRE(false, "IDX file '"
                                           << name_ << "': the gzip stream is truncated: the "
                                           << size_ << " compressed bytes end before the stream's "
                                           << "end marker, after " << inflated_
                                           << " decompressed bytes");
            } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
                MINICNN_REQUIRE(false, "IDX file '" << name_ << "': corrupt gzip data (zlib: "
                                                    << (zs_.msg ? zs_.msg : zError(rc))
                                                    << ") after " << inflated_
                                                    << " decompressed bytes");
            }
        }
        return produced;
    }
    std::int64_t total_size() const override { return -1; }

private:
    std::size_t input_left() const { return zs_.avail_in + (size_ - fed_); }

    const std::uint8_t* data_;
    std::size_t size_, fed_ = 0, inflated_ = 0;
    const std::string& name_;
    z_stream zs_;
    bool finished_ = false;
};

// Reads one IDX file with `ndims` dimensions (images: 3, labels: 1) from `r`. Returns the
// dimensions and fills `payload` with the product-of-dimensions bytes that follow the header.
std::vector<std::int64_t> read_idx(Reader& r, const std::string& name, const char* kind,
                                   std::uint32_t magic_expected, int ndims,
                                   std::vector<std::uint8_t>& payload) {
    static const char* const kDimNames[3] = {"count", "rows", "cols"};
    const bool gz = r.total_size() < 0;
    const char* where = gz ? "the decompressed data" : "the file";
    const std::size_t header_len = 4 + 4 * static_cast<std::size_t>(ndims);

    // The magic first, so that a file of the wrong kind is named as such even when it is short.
    std::uint8_t hdr[16];
    std::size_t got = r.read(hdr, 4);
    auto require_header = [&](std::size_t have) {
        MINICNN_REQUIRE(have == header_len,
                        "IDX " << kind << " file '" << name << "': truncated header: expected "
                               << header_len << " bytes (magic + " << ndims << " big-endian u32 "
                               << (ndims == 1 ? "dimension" : "dimensions") << "), " << where
                               << " has only " << have);
    };
    if (got < 4) require_header(got);

    const std::uint32_t magic = load_be32(hdr);
    if (magic != magic_expected) {
        std::ostringstream os;
        os << "IDX " << kind << " file '" << name << "': wrong magic number: found " << hex32(magic)
           << ", expected " << hex32(magic_expected) << " (IDX " << kind << ")";
        if (magic == kIdxImagesMagic) os << "; this looks like an IDX images file";
        if (magic == kIdxLabelsMagic) os << "; this looks like an IDX labels file";
        std::uint32_t swapped =
            (magic >> 24) | ((magic >> 8) & 0xff00u) | ((magic << 8) & 0xff0000u) | (magic << 24);
        if (swapped == magic_expected) os << "; the header is little-endian, IDX is big-endian";
        throw ArgumentError(os.str());
    }

    require_header(4 + r.read(hdr + 4, header_len - 4));
    std::vector<std::int64_t> dims(static_cast<std::size_t>(ndims));
    for (int d = 0; d < ndims; ++d) dims[d] = load_be32(hdr + 4 + 4 * d);
    auto dims_str = [&] {
        std::ostringstream os;
        for (int d = 0; d < ndims; ++d) os << (d ? ", " : "") << kDimNames[d] << " " << dims[d];
        return os.str();
    };
    for (int d = 0; d < ndims; ++d) {
        MINICNN_REQUIRE(dims[d] > 0, "IDX " << kind << " file '" << name << "': dimension '"
                                            << kDimNames[d] << "' is zero (header: " << dims_str()
                                            << "); expected every dimension to be positive");
    }

    // Each dimension is below 2^32; the product of three can overflow 64 bits, so check as we go.
    const std::uint64_t kMaxPayload = std::uint64_t{1} << 62;
    std::uint64_t payload_len = 1;
    for (int d = 0; d < ndims; ++d) {
        const std::uint64_t v = static_cast<std::uint64_t>(dims[d]);
        MINICNN_REQUIRE(payload_len <= kMaxPayload / v,
                        "IDX " << kind << " file '" << name << "': header (" << dims_str()
                               << ") announces more than 2^62 bytes of data");
        payload_len *= v;
    }
    const std::uint64_t expected_total = header_len + payload_len;

    if (!gz) {
        const std::uint64_t total = static_cast<std::uint64_t>(r.total_size());
        MINICNN_REQUIRE(total >= expected_total,
                        "IDX " << kind << " file '" << name << "': truncated: the header ("
                               << dims_str() << ") announces " << payload_len
                               << " data bytes, a file of " << expected_total
                               << " bytes, but the file has " << total << " bytes ("
                               << (expected_total - total) << " missing)");
        MINICNN_REQUIRE(total == expected_total,
                        "IDX " << kind << " file '" << name << "': trailing garbage: the header ("
                               << dims_str() << ") announces a file of " << expected_total
                               << " bytes, but the file has " << total << " bytes ("
                               << (total - expected_total) << " extra)");
        payload.resize(static_cast<std::size_t>(payload_len));
        got = r.read(payload.data(), payload.size());
        MINICNN_REQUIRE(got == payload.size(), "IDX " << kind << " file '" << name
                                                      << "': the file shrank while being read: got "
                                                      << got << " of " << payload_len
                                                      << " data bytes");
        return dims;
    }

    // gzip: inflate in chunks up to the announced length + 1 byte; never reserve the announced
    // size.
    const std::uint64_t cap = payload_len + 1;
    std::uint64_t have = 0;
    payload.clear();
    while (have < cap) {
        const std::uint64_t chunk = std::min<std::uint64_t>(cap - have, std::uint64_t{1} << 20);
        payload.resize(static_cast<std::size_t>(have + chunk));
        got = r.read(payload.data() + have, static_cast<std::size_t>(chunk));
        have += got;
        if (got < chunk) break;
    }
    payload.resize(static_cast<std::size_t>(std::min(have, payload_len)));
    MINICNN_REQUIRE(have >= payload_len,
                    "IDX " << kind << " file '" << name << "': truncated: the header ("
                           << dims_str() << ") announces " << payload_len
                           << " data bytes, but the decompressed "
                           << "data holds only " << have << " after the header ("
                           << (payload_len - have) << " missing)");
    MINICNN_REQUIRE(have == payload_len,
                    "IDX " << kind << " file '" << name << "': trailing garbage: the header ("
                           << dims_str() << ") announces " << payload_len
                           << " data bytes, but the decompressed data continues past them");
    payload.shrink_to_fit();
    return dims;
}

template <class Result, class Fn>
Result parse_memory(const std::uint8_t* data, std::size_t size, const std::string& name, Fn&& fn) {
    MINICNN_REQUIRE(data != nullptr || size == 0,
                    "IDX parser: null data pointer for '" << name << "'");
    static const std::uint8_t kEmpty[1] = {0};
    if (!data) data = kEmpty;
    if (has_gzip_magic(data, size)) {
        GzipReader r(data, size, name);
        return fn(r);
    }
    MemoryReader r(data, size);
    return fn(r);
}

struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

template <class Result, class Fn>
Result parse_file(const std::string& path, const char* kind, Fn&& fn) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        int e = errno;
        MINICNN_REQUIRE(e != ENOENT, "IDX " << kind << " file '" << path << "' not found");
        MINICNN_REQUIRE(false, "IDX " << kind << " file '" << path
                                      << "' cannot be accessed: " << std::strerror(e));
    }
    MINICNN_REQUIRE(!S_ISDIR(st.st_mode),
                    "IDX " << kind << " file '" << path << "' is a directory, expected a file");
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
    MINICNN_REQUIRE(
        f, "IDX " << kind << " file '" << path << "' cannot be opened: " << std::strerror(errno));
    const std::int64_t size = static_cast<std::int64_t>(st.st_size);

    std::uint8_t magic[2] = {0, 0};
    std::size_t n = std::fread(magic, 1, 2, f.get());
    if (has_gzip_magic(magic, n)) {
        // Compressed bytes: bounded by the real file size, read until EOF.
        std::vector<std::uint8_t> z(magic, magic + n);
        z.reserve(static_cast<std::size_t>(std::max<std::int64_t>(size, 2)));
        std::uint8_t buf[1 << 16];
        while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) z.insert(z.end(), buf, buf + n);
        MINICNN_REQUIRE(!std::ferror(f.get()), "IDX " << kind << " file '" << path
                                                      << "': read error: " << std::strerror(errno));
        GzipReader r(z.data(), z.size(), path);
        return fn(r);
    }
    std::rewind(f.get());
    FileReader r(f.get(), size, path);
    return fn(r);
}

IdxImages images_from(Reader& r, const std::string& name) {
    IdxImages out;
    auto dims = read_idx(r, name, "images", kIdxImagesMagic, 3, out.pixels);
    out.count = dims[0];
    out.rows = dims[1];
    out.cols = dims[2];
    return out;
}

std::vector<std::uint8_t> labels_from(Reader& r, const std::string& name) {
    std::vector<std::uint8_t> out;
    read_idx(r, name, "labels", kIdxLabelsMagic, 1, out);
    return out;
}

bool is_file(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The names an IDX file may have, in order of preference.
std::vector<std::string> idx_candidates(const std::string& dir, const std::string& prefix,
                                        const char* kind, const char* suffix) {
    const std::string base = dir + "/" + prefix + "-" + kind;
    return {base + "-" + suffix, base + "-" + suffix + ".gz", base + "." + suffix,
            base + "." + suffix + ".gz"};
}

std::string find_idx(const std::string& dir, const std::string& prefix, const char* kind,
                     const char* suffix) {
    const std::vector<std::string> candidates = idx_candidates(dir, prefix, kind, suffix);
    for (const auto& c : candidates)
        if (is_file(c)) return c;
    std::ostringstream os;
    os << "load_idx_dataset: no " << prefix << " " << kind << " file in '" << dir
       << "'; looked for ";
    for (int i = 0; i < 4; ++i) os << (i ? ", " : "") << "'" << candidates[i] << "'";
    throw ArgumentError(os.str());
}

}  // namespace

IdxImages parse_idx_images(const std::uint8_t* data, std::size_t size, const std::string& name) {
    return parse_memory<IdxImages>(data, size, name,
                                   [&](Reader& r) { return images_from(r, name); });
}

std::vector<std::uint8_t> parse_idx_labels(const std::uint8_t* data, std::size_t size,
                                           const std::string& name) {
    return parse_memory<std::vector<std::uint8_t>>(data, size, name,
                                                   [&](Reader& r) { return labels_from(r, name); });
}

IdxImages read_idx_images(const std::string& path) {
    return parse_file<IdxImages>(path, "images", [&](Reader& r) { return images_from(r, path); });
}

std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
    return parse_file<std::vector<std::uint8_t>>(path, "labels",
                                                 [&](Reader& r) { return labels_from(r, path); });
}

Shape Dataset::shape() const {
    Shape s{size()};
    s.insert(s.end(), image_shape.begin(), image_shape.end());
    return s;
}

Tensor unit_images(const Dataset& ds) {
    Tensor t(ds.shape(), DType::f32);
    float* px = t.data<float>();  // (n, h, w, c)
    for (std::size_t i = 0; i < ds.pixels.size(); ++i) px[i] = detail::pixel_to_unit(ds.pixels[i]);
    return t;
}

Dataset make_dataset(IdxImages images, const std::vector<std::uint8_t>& labels,
                     const std::string& what, bool expect_28x28) {
    const std::int64_t n = images.count;
    MINICNN_REQUIRE(n == static_cast<std::int64_t>(labels.size()),
                    what << ": " << n << " images but " << labels.size()
                         << " labels; expected one label per image");
    MINICNN_REQUIRE(images.rows > 0 && images.cols > 0 &&
                        static_cast<std::uint64_t>(images.pixels.size()) ==
                            static_cast<std::uint64_t>(n) *
                                static_cast<std::uint64_t>(images.rows) *
                                static_cast<std::uint64_t>(images.cols),
                    what << ": " << images.pixels.size() << " pixels for " << n << " images of "
                         << images.rows << "x" << images.cols);
    MINICNN_REQUIRE(!expect_28x28 || (images.rows == 28 && images.cols == 28),
                    what << ": images are " << images.rows << "x" << images.cols
                         << ", expected 28x28 (MNIST / Fashion-MNIST)");
    for (std::size_t i = 0; i < labels.size(); ++i) {
        MINICNN_REQUIRE(labels[i] < 10, what << ": label " << i << " is " << int(labels[i])
                                             << ", expected a class in [0, 10)");
    }

    Dataset ds;
    ds.pixels = std::move(images.pixels);  // (n, rows, cols, 1)
    ds.image_shape = {images.rows, images.cols, 1};
    ds.labels.assign(labels.begin(), labels.end());
    return ds;
}

bool has_idx_images(const std::string& dir, const std::string& prefix) {
    for (const auto& c : idx_candidates(dir, prefix, "images", "idx3-ubyte"))
        if (is_file(c)) return true;
    return false;
}

Dataset load_idx_dataset(const std::string& dir, const std::string& prefix, bool expect_28x28) {
    MINICNN_REQUIRE(!prefix.empty(),
                    "load_idx_dataset: empty prefix, expected \"train\" or \"t10k\"");
    struct stat st;
    MINICNN_REQUIRE(::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode),
                    "load_idx_dataset: data directory '" << dir << "' does not exist");
    const std::string img_path = find_idx(dir, prefix, "images", "idx3-ubyte");
    const std::string lbl_path = find_idx(dir, prefix, "labels", "idx1-ubyte");
    IdxImages images = read_idx_images(img_path);
    std::vector<std::uint8_t> labels = read_idx_labels(lbl_path);
    return make_dataset(std::move(images), labels,
                        "images '" + img_path + "' and labels '" + lbl_path + "'", expect_28x28);
}

Dataset split_tail(Dataset& ds, std::int64_t n) {
    const std::int64_t total = ds.size();
    const std::int64_t per = ds.sample_numel();
    MINICNN_REQUIRE(
        ds.image_shape.size() == 3 && per > 0 &&
            std::uint64_t(ds.pixels.size()) == std::uint64_t(total) * std::uint64_t(per),
        "split_tail: expected pixels (n, h, w, c) with n = " << total << " labels");
    MINICNN_REQUIRE(n >= 0 && n < total, "split_tail: asked for the last "
                                             << n << " examples, but the data set has " << total
                                             << "; expected 0 <= n < " << total
                                             << " (at least one example must remain)");
    const std::size_t keep_px = std::size_t(total - n) * std::size_t(per);
    Dataset tail;
    tail.image_shape = ds.image_shape;
    tail.pixels.assign(ds.pixels.begin() + std::ptrdiff_t(keep_px), ds.pixels.end());
    tail.labels.assign(ds.labels.begin() + (total - n), ds.labels.end());
    // The head keeps its storage, cut to size: no second copy of the kept images, unless the
    // head is the smaller part (copying it then costs less than the tail it frees).
    ds.pixels.resize(keep_px);
    ds.labels.resize(std::size_t(total - n));
    if (n > total - n) {
        ds.pixels.shrink_to_fit();
        ds.labels.shrink_to_fit();
    }
    return tail;
}

}  // namespace minicnn
