// host/cifar.cpp — the CIFAR-10 binary reader and the data directory's format detection
// (minicnn/cifar.h).
//
// A record is 3,073 bytes: label, then the R, G and B planes (1,024 bytes each, row-major). Record i's
// byte 1 + c * 1024 + y * 32 + x becomes pixels[i, y, x, c] (NHWC, still 8-bit; / 255 as batches are
// gathered, minicnn/idx.h). The file's size is checked
// (a whole number of records, at least one) before anything is allocated.
#include "minicnn/cifar.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "minicnn/error.h"

namespace minicnn {

namespace {

bool is_regular(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void require_dir(const std::string& dir) {
    struct stat st;
    MINICNN_REQUIRE(::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode),
                    "data directory '" << dir << "' does not exist");
}

// The numbers k of the data_batch_<k>.bin files in `dir`, ascending.
std::vector<long> data_batch_numbers(const std::string& dir) {
    std::vector<long> ks;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ks;
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        const std::string pre = "data_batch_", post = ".bin";
        if (name.size() <= pre.size() + post.size() || name.rfind(pre, 0) != 0 ||
            name.compare(name.size() - post.size(), post.size(), post) != 0)
            continue;
        const std::string digits = name.substr(pre.size(), name.size() - pre.size() - post.size());
        if (digits.size() > 9 || digits[0] == '0' ||
            !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
            continue;
        if (is_regular(dir + "/" + name)) ks.push_back(std::stol(digits));
    }
    ::closedir(d);
    std::sort(ks.begin(), ks.end());
    return ks;
}

// A whole number of records, at least one.
void check_cifar_size(std::uint64_t size, const std::string& name) {
    MINICNN_REQUIRE(size > 0 && size % std::uint64_t(kCifarRecordBytes) == 0,
                    name << ": " << size << " bytes is not a whole number of CIFAR-10 records ("
                         << kCifarRecordBytes
                         << " bytes each: a label byte and 3,072 pixel bytes); expected a positive "
                            "multiple of "
                         << kCifarRecordBytes);
}

}  // namespace

Dataset parse_cifar_batch(const std::uint8_t* data, std::size_t size, const std::string& name) {
    check_cifar_size(size, name);
    const std::int64_t n = std::int64_t(size / std::size_t(kCifarRecordBytes));
    const std::int64_t plane = kCifarSide * kCifarSide;
    for (std::int64_t i = 0; i < n; ++i) {
        const std::uint8_t label = data[i * kCifarRecordBytes];
        MINICNN_REQUIRE(label < 10, name << ": record " << i << " has label " << int(label)
                                         << ", expected a class in [0, 10)");
    }
    Dataset ds;
    ds.image_shape = {kCifarSide, kCifarSide, 3};
    ds.pixels.resize(std::size_t(n * plane * 3));
    std::uint8_t* out = ds.pixels.data();  // (n, 32, 32, 3)
    ds.labels.resize(std::size_t(n));
    for (std::int64_t i = 0; i < n; ++i) {
        const std::uint8_t* rec = data + i * kCifarRecordBytes;  // label, R (32, 32), G, B
        ds.labels[std::size_t(i)] = rec[0];
        std::uint8_t* img = out + i * plane * 3;
        for (std::int64_t p = 0; p < plane; ++p)
            for (int c = 0; c < 3; ++c) img[p * 3 + c] = rec[1 + c * plane + p];
    }
    return ds;
}

Dataset read_cifar_batch(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    MINICNN_REQUIRE(f.good(), "cannot open CIFAR-10 file '" << path << "'");
    f.seekg(0, std::ios::end);
    const std::streamoff size = f.tellg();
    MINICNN_REQUIRE(size >= 0, "cannot read CIFAR-10 file '" << path << "'");
    f.seekg(0, std::ios::beg);
    check_cifar_size(std::uint64_t(size), "'" + path + "'");  // before allocating for it
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
    MINICNN_REQUIRE(f.read(reinterpret_cast<char*>(bytes.data()), size).good(),
                    "failed reading CIFAR-10 file '" << path << "'");
    return parse_cifar_batch(bytes.data(), bytes.size(), "'" + path + "'");
}

Dataset load_cifar_dataset(const std::string& dir, const std::string& split) {
    require_dir(dir);
    if (split == "test") {
        const std::string p = dir + "/test_batch.bin";
        MINICNN_REQUIRE(is_regular(p),
                        "CIFAR-10 data in '" << dir << "': no test set; looked for '" << p << "'");
        return read_cifar_batch(p);
    }
    MINICNN_REQUIRE(split == "train",
                    "load_cifar_dataset: split '" << split << "', expected \"train\" or \"test\"");
    const std::vector<long> ks = data_batch_numbers(dir);
    MINICNN_REQUIRE(!ks.empty(), "CIFAR-10 data in '" << dir << "': no training set; looked for '"
                                                      << dir
                                                      << "/data_batch_1.bin' (and _2, _3, ...)");
    for (std::size_t i = 0; i < ks.size(); ++i) {
        MINICNN_REQUIRE(ks[i] == long(i) + 1, "CIFAR-10 data in '"
                                                  << dir << "': data_batch_" << i + 1
                                                  << ".bin is missing but data_batch_" << ks[i]
                                                  << ".bin exists; expected data_batch_1.bin to _"
                                                  << ks.back() << ".bin without a gap");
    }
    std::vector<Dataset> parts;
    std::int64_t n = 0;
    for (long k : ks) {
        parts.push_back(read_cifar_batch(dir + "/data_batch_" + std::to_string(k) + ".bin"));
        n += parts.back().size();
    }
    if (parts.size() == 1) return std::move(parts.front());
    Dataset all;
    all.image_shape = parts.front().image_shape;
    all.pixels.reserve(std::size_t(n * kCifarSide * kCifarSide * 3));
    all.labels.reserve(std::size_t(n));
    for (Dataset& p : parts) {
        all.pixels.insert(all.pixels.end(), p.pixels.begin(), p.pixels.end());
        all.labels.insert(all.labels.end(), p.labels.begin(), p.labels.end());
        p = Dataset{};  // freed as it is copied
    }
    return all;
}

DataFormat detect_data_format(const std::string& dir) {
    require_dir(dir);
    const bool idx = has_idx_images(dir, "train") || has_idx_images(dir, "t10k");
    const bool cifar = !data_batch_numbers(dir).empty() || is_regular(dir + "/test_batch.bin");
    MINICNN_REQUIRE(!(idx && cifar), "data directory '" << dir
                                                        << "' holds both IDX files and CIFAR-10 "
                                                           "batches; expected one format");
    MINICNN_REQUIRE(idx || cifar,
                    "data directory '"
                        << dir
                        << "' holds no data set; looked for IDX files (train-images-idx3-ubyte, "
                           "t10k-images-idx3-ubyte, with or without .gz) and CIFAR-10 binary "
                           "batches (data_batch_1.bin, ..., test_batch.bin)");
    return idx ? DataFormat::idx : DataFormat::cifar10;
}

const char* data_format_name(DataFormat f) {
    return f == DataFormat::idx ? "IDX" : "CIFAR-10 binary";
}

Dataset load_dataset(const std::string& dir, const std::string& split) {
    MINICNN_REQUIRE(split == "train" || split == "test",
                    "load_dataset: split '" << split << "', expected \"train\" or \"test\"");
    if (detect_data_format(dir) == DataFormat::idx)
        return load_idx_dataset(dir, split == "train" ? "train" : "t10k");
    return load_cifar_dataset(dir, split);
}

}  // namespace minicnn
