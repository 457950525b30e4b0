// tests/test_idx.cpp — the IDX reader: real Fashion-MNIST (skipped when the Debian package is
// absent), and every corruption case, written as small raw and gzip files into a temporary
// directory: missing file, truncated header, wrong magic, zero dimensions, lying counts (2^31 - 1),
// truncated payload, trailing garbage, broken gzip streams, disagreeing image and label counts,
// wrong image sizes, bad labels, and the train/validation split.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.h"
#include "minicnn/idx.h"

namespace {

using minicnn::ArgumentError;
using minicnn::test::error_of;
using Bytes = std::vector<std::uint8_t>;


void put_be32(Bytes& b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

// An images file whose header says (count, rows, cols) and whose payload has `payload` bytes,
// pixel k = (k * 7 + 3) % 256.
Bytes images_bytes(std::uint32_t count, std::uint32_t rows, std::uint32_t cols, std::size_t payload,
                   std::uint32_t magic = minicnn::kIdxImagesMagic) {
    Bytes b;
    put_be32(b, magic);
    put_be32(b, count);
    put_be32(b, rows);
    put_be32(b, cols);
    for (std::size_t k = 0; k < payload; ++k)
        b.push_back(static_cast<std::uint8_t>((k * 7 + 3) % 256));
    return b;
}
Bytes images_bytes(std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
    return images_bytes(count, rows, cols, std::size_t{count} * rows * cols);
}

Bytes labels_bytes(const Bytes& labels, std::uint32_t count_in_header) {
    Bytes b;
    put_be32(b, minicnn::kIdxLabelsMagic);
    put_be32(b, count_in_header);
    b.insert(b.end(), labels.begin(), labels.end());
    return b;
}
Bytes labels_bytes(const Bytes& labels) {
    return labels_bytes(labels, static_cast<std::uint32_t>(labels.size()));
}

Bytes gzip(const Bytes& raw) {
    z_stream zs{};
    EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    Bytes out(deflateBound(&zs, raw.size()) + 64);
    zs.next_in = const_cast<Bytef*>(raw.data());
    zs.avail_in = static_cast<uInt>(raw.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

class IdxTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ =
            (std::filesystem::temp_directory_path() / "minicnn-idx-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    std::string write(const std::string& name, const Bytes& b) {
        const std::string p = dir_ + "/" + name;
        std::ofstream f(p, std::ios::binary);
        f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
        EXPECT_TRUE(f.good());
        return p;
    }
    std::string dir_;
};

// ---- well-formed files --------------------------------------------------------------------------

TEST_F(IdxTest, RawAndGzipImagesGiveTheSamePixels) {
    const Bytes raw = images_bytes(3, 4, 5);
    for (const std::string& p : {write("a-raw", raw), write("a.gz", gzip(raw))}) {
        SCOPED_TRACE(p);
        minicnn::IdxImages im = minicnn::read_idx_images(p);
        EXPECT_EQ(im.count, 3);
        EXPECT_EQ(im.rows, 4);
        EXPECT_EQ(im.cols, 5);
        ASSERT_EQ(im.pixels.size(), 60u);
        for (std::size_t k = 0; k < 60; ++k) ASSERT_EQ(im.pixels[k], (k * 7 + 3) % 256) << k;
    }
}

TEST_F(IdxTest, RawAndGzipLabels) {
    const Bytes labels = {0, 9, 3, 3, 255};
    const Bytes raw = labels_bytes(labels);
    EXPECT_EQ(minicnn::read_idx_labels(write("l", raw)), labels);
    EXPECT_EQ(minicnn::read_idx_labels(write("l.gz", gzip(raw))), labels);
    EXPECT_EQ(minicnn::parse_idx_labels(raw.data(), raw.size(), "mem"), labels);
}

TEST_F(IdxTest, InMemoryParserMatchesFileReader) {
    const Bytes raw = images_bytes(2, 3, 3);
    const Bytes gz = gzip(raw);
    auto a = minicnn::parse_idx_images(raw.data(), raw.size(), "raw");
    auto b = minicnn::parse_idx_images(gz.data(), gz.size(), "gz");
    auto c = minicnn::read_idx_images(write("c", raw));
    EXPECT_EQ(a.pixels, b.pixels);
    EXPECT_EQ(a.pixels, c.pixels);
    EXPECT_EQ(b.count, 2);
}

TEST_F(IdxTest, ConcatenatedGzipMembersAreOneFile) {
    // gzip(1) concatenates members; the reader treats them as one stream.
    const Bytes raw = images_bytes(4, 2, 2);
    const Bytes first(raw.begin(), raw.begin() + 21), second(raw.begin() + 21, raw.end());
    Bytes gz = gzip(first);
    const Bytes gz2 = gzip(second);
    gz.insert(gz.end(), gz2.begin(), gz2.end());
    auto im = minicnn::read_idx_images(write("multi.gz", gz));
    EXPECT_EQ(im.pixels, Bytes(raw.begin() + 16, raw.end()));
}

// ---- corruptions --------------------------------------------------------------------------------

TEST_F(IdxTest, MissingFileIsNamed) {
    const std::string p = dir_ + "/nope-images-idx3-ubyte";
    std::string msg = error_of([&] { minicnn::read_idx_images(p); });
    EXPECT_CONTAINS(msg, p);
    EXPECT_CONTAINS(msg, "not found");
    msg = error_of([&] { minicnn::read_idx_labels(dir_); });
    EXPECT_CONTAINS(msg, "is a directory");
}

TEST_F(IdxTest, TruncatedHeaderRawAndGzip) {
    const Bytes full = images_bytes(1, 2, 2);
    for (std::size_t len : {0u, 3u, 4u, 11u, 15u}) {
        const Bytes cut(full.begin(), full.begin() + len);
        for (bool gz : {false, true}) {
            if (gz && len == 0) continue;  // an empty file is not gzip; covered raw
            SCOPED_TRACE("len " + std::to_string(len) + (gz ? " gzip" : " raw"));
            const std::string p =
                write("h" + std::to_string(len) + (gz ? ".gz" : ""), gz ? gzip(cut) : cut);
            const std::string msg = error_of([&] { minicnn::read_idx_images(p); });
            EXPECT_CONTAINS(msg, p);
            EXPECT_CONTAINS(msg, "truncated header");
            EXPECT_CONTAINS(msg, "has only " + std::to_string(len));
        }
    }
    const Bytes lab = {0, 0, 8, 1, 0, 0};
    EXPECT_CONTAINS(error_of([&] { minicnn::read_idx_labels(write("l6", lab)); }),
                    "truncated header");
}

TEST_F(IdxTest, WrongMagicPrintsFoundAndExpected) {
    const std::string lp = write("labels", labels_bytes({1, 2}));
    std::string msg = error_of([&] { minicnn::read_idx_images(lp); });
    EXPECT_CONTAINS(msg, lp);
    EXPECT_CONTAINS(msg, "found 0x00000801");
    EXPECT_CONTAINS(msg, "expected 0x00000803");
    EXPECT_CONTAINS(msg, "looks like an IDX labels file");

    const std::string ip = write("images.gz", gzip(images_bytes(1, 1, 1)));
    msg = error_of([&] { minicnn::read_idx_labels(ip); });
    EXPECT_CONTAINS(msg, "found 0x00000803");
    EXPECT_CONTAINS(msg, "expected 0x00000801");

    const std::string le = write("le", images_bytes(1, 1, 1, 1, 0x03080000));
    msg = error_of([&] { minicnn::read_idx_images(le); });
    EXPECT_CONTAINS(msg, "found 0x03080000");
    EXPECT_CONTAINS(msg, "little-endian");

    const std::string text = write("text", Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l',
                                                 'd', '!', '!', '!', '!', '!'});
    EXPECT_CONTAINS(error_of([&] { minicnn::read_idx_images(text); }), "found 0x68656c6c");
}

TEST_F(IdxTest, ZeroDimensionsAreRejected) {
    const char* names[3] = {"'count'", "'rows'", "'cols'"};
    for (int d = 0; d < 3; ++d) {
        std::uint32_t dims[3] = {2, 3, 3};
        dims[d] = 0;
        for (bool gz : {false, true}) {
            const Bytes raw = images_bytes(dims[0], dims[1], dims[2], 0);
            const std::string p =
                write("z" + std::to_string(d) + (gz ? ".gz" : ""), gz ? gzip(raw) : raw);
            const std::string msg = error_of([&] { minicnn::read_idx_images(p); });
            EXPECT_CONTAINS(msg, p);
            EXPECT_CONTAINS(msg, names[d]);
            EXPECT_CONTAINS(msg, "is zero");
        }
    }
    EXPECT_CONTAINS(error_of([&] { minicnn::read_idx_labels(write("lz", labels_bytes({}, 0))); }),
                    "'count' is zero");
}

TEST_F(IdxTest, HugeCountIsCheckedBeforeAllocating) {
    // 2^31 - 1 images of 28x28 claim 1,683,627,179,248 bytes; the file has 100.
    const std::uint32_t big = 2147483647u;
    const Bytes raw = images_bytes(big, 28, 28, 100);
    std::string msg = error_of([&] { minicnn::read_idx_images(write("big", raw)); });
    EXPECT_CONTAINS(msg, "truncated");
    EXPECT_CONTAINS(msg, "1683627179248 data bytes");
    EXPECT_CONTAINS(msg, "a file of 1683627179264 bytes, but the file has 116 bytes");
    // gzip: the reader inflates what is there (100 bytes) and stops; no 1.6 TB allocation.
    msg = error_of([&] { minicnn::read_idx_images(write("big.gz", gzip(raw))); });
    EXPECT_CONTAINS(msg, "truncated");
    EXPECT_CONTAINS(msg, "holds only 100");
    // The largest header of all: every dimension 2^32 - 1; the product is computed without
    // overflow.
    const Bytes max = images_bytes(0xffffffffu, 0xffffffffu, 0xffffffffu, 8);
    msg = error_of([&] { minicnn::parse_idx_images(max.data(), max.size(), "max"); });
    EXPECT_CONTAINS(msg, "more than 2^62 bytes");
    const Bytes lab = labels_bytes({1, 2, 3}, big);
    msg = error_of([&] { minicnn::read_idx_labels(write("lbig.gz", gzip(lab))); });
    EXPECT_CONTAINS(msg, "2147483647 data bytes");
}

TEST_F(IdxTest, TruncatedPayloadRawAndGzip) {
    const Bytes raw = images_bytes(3, 4, 4, 47);  // one byte short of 48
    std::string p = write("short", raw);
    std::string msg = error_of([&] { minicnn::read_idx_images(p); });
    EXPECT_CONTAINS(msg, p);
    EXPECT_CONTAINS(msg, "truncated");
    EXPECT_CONTAINS(msg, "(1 missing)");
    p = write("short.gz", gzip(raw));
    msg = error_of([&] { minicnn::read_idx_images(p); });
    EXPECT_CONTAINS(msg, p);
    EXPECT_CONTAINS(msg, "holds only 47");
}

TEST_F(IdxTest, TrailingGarbageRawAndGzip) {
    const Bytes raw = images_bytes(3, 4, 4, 50);  // two bytes too many
    std::string p = write("long", raw);
    std::string msg = error_of([&] { minicnn::read_idx_images(p); });
    EXPECT_CONTAINS(msg, p);
    EXPECT_CONTAINS(msg, "trailing garbage");
    EXPECT_CONTAINS(msg, "(2 extra)");
    msg = error_of([&] { minicnn::read_idx_images(write("long.gz", gzip(raw))); });
    EXPECT_CONTAINS(msg, "trailing garbage");
    EXPECT_CONTAINS(msg, "continues past them");
    // A valid gzip stream followed by bytes that are not another gzip member.
    Bytes gz = gzip(images_bytes(3, 4, 4));
    gz.insert(gz.end(), {'j', 'u', 'n', 'k'});
    p = write("after.gz", gz);
    msg = error_of([&] { minicnn::read_idx_images(p); });
    EXPECT_CONTAINS(msg, p);
    EXPECT_CONTAINS(msg, "4 bytes of trailing garbage after the end of the gzip stream");
}

TEST_F(IdxTest, GarbageWhereGzipIsExpected) {
    // The gzip magic followed by junk: zlib's message is passed on.
    Bytes junk = {0x1f, 0x8b, 0x42, 0x00, 0x11, 0x22, 0x33,
                  0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa};
    std::string p = write("junk.gz", junk);
    std::string msg = error_of([&] { minicnn::read_idx_images(p); });
    EXPECT_CONTAINS(msg, p);
    EXPECT_CONTAINS(msg, "corrupt gzip data (zlib: unknown compression method)");
    // Corrupt deflate data inside a valid gzip header.
    Bytes gz = gzip(images_bytes(3, 8, 8));
    for (std::size_t i = 10; i < gz.size() - 8; ++i) gz[i] = static_cast<std::uint8_t>(0xff - i);
    msg = error_of([&] { minicnn::read_idx_images(write("bad-deflate.gz", gz)); });
    EXPECT_CONTAINS(msg, "corrupt gzip data (zlib:");
    // A broken CRC in the gzip trailer.
    gz = gzip(images_bytes(3, 8, 8));
    gz[gz.size() - 6] ^= 0x01;
    msg = error_of([&] { minicnn::read_idx_images(write("bad-crc.gz", gz)); });
    EXPECT_CONTAINS(msg, "incorrect data check");
    // A compressed stream cut short.
    gz = gzip(images_bytes(3, 8, 8));
    for (std::size_t keep : {std::size_t{2}, std::size_t{12}, gz.size() / 2, gz.size() - 1}) {
        SCOPED_TRACE(keep);
        const Bytes cut(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(keep));
        msg = error_of([&] { minicnn::parse_idx_images(cut.data(), cut.size(), "cut.gz"); });
        EXPECT_CONTAINS(msg, "'cut.gz'");
        EXPECT_CONTAINS(msg, "the gzip stream is truncated");
    }
}

// ---- data sets ----------------------------------------------------------------------------------

// The data set keeps the file's bytes (8-bit in memory); unit_images scales them to [0, 1] by
// detail::pixel_to_unit, the expression the batch gathers use.
TEST_F(IdxTest, LoadDatasetKeepsBytesScaledByUnitImagesAndReadsLabels) {
    Bytes raw = images_bytes(3, 28, 28);
    raw[16] = 0;
    raw[17] = 255;
    write("train-images-idx3-ubyte.gz", gzip(raw));
    write("train-labels-idx1-ubyte", labels_bytes({7, 0, 9}));
    minicnn::Dataset ds = minicnn::load_idx_dataset(dir_, "train");
    ASSERT_EQ(ds.size(), 3);
    EXPECT_EQ(ds.shape(), (minicnn::Shape{3, 28, 28, 1}));
    EXPECT_EQ(ds.image_shape, (minicnn::Shape{28, 28, 1}));
    EXPECT_EQ(ds.sample_numel(), 784);
    EXPECT_EQ(ds.labels, (std::vector<std::int32_t>{7, 0, 9}));
    EXPECT_EQ(ds.pixels, Bytes(raw.begin() + 16, raw.end()));
    const minicnn::Tensor images = minicnn::unit_images(ds);
    EXPECT_EQ(images.shape(), (minicnn::Shape{3, 28, 28, 1}));
    EXPECT_EQ(images.dtype(), minicnn::DType::f32);
    const float* px = images.data<float>();
    EXPECT_EQ(px[0], 0.0f);
    EXPECT_EQ(px[1], 1.0f);
    for (std::size_t k = 2; k < raw.size() - 16; ++k)
        ASSERT_EQ(px[k], float(raw[16 + k]) / 255.0f) << k;
}

TEST_F(IdxTest, DatasetCountsMustAgree) {
    write("t10k-images-idx3-ubyte", images_bytes(5, 28, 28));
    write("t10k-labels-idx1-ubyte", labels_bytes({1, 2, 3, 4}));
    const std::string msg = error_of([&] { minicnn::load_idx_dataset(dir_, "t10k"); });
    EXPECT_CONTAINS(msg, "5 images but 4 labels");
    EXPECT_CONTAINS(msg, dir_ + "/t10k-images-idx3-ubyte");
    EXPECT_CONTAINS(msg, dir_ + "/t10k-labels-idx1-ubyte");
}

TEST_F(IdxTest, DatasetImagesMustBe28x28WhenExpected) {
    write("train-images-idx3-ubyte", images_bytes(2, 32, 28));
    write("train-labels-idx1-ubyte", labels_bytes({1, 2}));
    const std::string msg = error_of([&] { minicnn::load_idx_dataset(dir_, "train"); });
    EXPECT_CONTAINS(msg, "images are 32x28, expected 28x28");
    minicnn::Dataset ds = minicnn::load_idx_dataset(dir_, "train", /*expect_28x28=*/false);
    EXPECT_EQ(ds.shape(), (minicnn::Shape{2, 32, 28, 1}));
}

TEST_F(IdxTest, DatasetLabelsMustBeClasses) {
    write("train-images-idx3-ubyte", images_bytes(3, 28, 28));
    write("train-labels-idx1-ubyte", labels_bytes({1, 10, 2}));
    const std::string msg = error_of([&] { minicnn::load_idx_dataset(dir_, "train"); });
    EXPECT_CONTAINS(msg, "label 1 is 10, expected a class in [0, 10)");
}

TEST_F(IdxTest, DatasetMissingFilesListWhatWasTried) {
    std::string msg = error_of([&] { minicnn::load_idx_dataset(dir_, "train"); });
    EXPECT_CONTAINS(msg, dir_ + "/train-images-idx3-ubyte.gz");
    EXPECT_CONTAINS(msg, "no train images file");
    write("train-images-idx3-ubyte", images_bytes(1, 28, 28));
    msg = error_of([&] { minicnn::load_idx_dataset(dir_, "train"); });
    EXPECT_CONTAINS(msg, "no train labels file");
    msg = error_of([&] { minicnn::load_idx_dataset(dir_ + "/missing", "train"); });
    EXPECT_CONTAINS(msg, "data directory '" + dir_ + "/missing' does not exist");
}

TEST_F(IdxTest, SplitTailCarvesOffTheLastExamples) {
    write("train-images-idx3-ubyte", images_bytes(5, 28, 28));
    write("train-labels-idx1-ubyte", labels_bytes({0, 1, 2, 3, 4}));
    minicnn::Dataset ds = minicnn::load_idx_dataset(dir_, "train");
    const Bytes all = ds.pixels;
    minicnn::Dataset val = minicnn::split_tail(ds, 2);
    EXPECT_EQ(ds.size(), 3);
    EXPECT_EQ(val.size(), 2);
    EXPECT_EQ(ds.labels, (std::vector<std::int32_t>{0, 1, 2}));
    EXPECT_EQ(val.labels, (std::vector<std::int32_t>{3, 4}));
    EXPECT_EQ(ds.shape(), (minicnn::Shape{3, 28, 28, 1}));
    EXPECT_EQ(val.shape(), (minicnn::Shape{2, 28, 28, 1}));
    EXPECT_EQ(ds.pixels, Bytes(all.begin(), all.begin() + 3 * 784));
    EXPECT_EQ(val.pixels, Bytes(all.begin() + 3 * 784, all.end()));
    // Carving off more than half copies the head instead: the same result.
    minicnn::Dataset big_tail = minicnn::split_tail(ds, 2);
    EXPECT_EQ(ds.pixels, Bytes(all.begin(), all.begin() + 784));
    EXPECT_EQ(big_tail.pixels, Bytes(all.begin() + 784, all.begin() + 3 * 784));
    EXPECT_EQ(ds.labels, (std::vector<std::int32_t>{0}));
    EXPECT_EQ(big_tail.labels, (std::vector<std::int32_t>{1, 2}));
    ds = std::move(big_tail);

    EXPECT_CONTAINS(error_of([&] { minicnn::split_tail(ds, 2); }),
                    "asked for the last 2 examples, but the data set has 2");
    EXPECT_CONTAINS(error_of([&] { minicnn::split_tail(ds, -1); }), "expected 0 <= n < 2");
    EXPECT_EQ(ds.size(), 2);  // unchanged by the failed calls
    EXPECT_EQ(minicnn::split_tail(ds, 0).size(), 0);
    EXPECT_EQ(ds.size(), 2);
}

// ---- the real data set --------------------------------------------------------------------------

TEST(IdxFashionMnist, LoadsTrainAndTestSets) {
    const std::string dir = "/usr/share/datasets/fashion-mnist";
    struct stat st;
    if (::stat((dir + "/train-images-idx3-ubyte.gz").c_str(), &st) != 0)
        GTEST_SKIP() << "Fashion-MNIST not installed in " << dir
                     << " (Debian package dataset-fashion-mnist)";
    minicnn::Dataset train = minicnn::load_idx_dataset(dir, "train");
    minicnn::Dataset test = minicnn::load_idx_dataset(dir, "t10k");
    ASSERT_EQ(train.size(), 60000);
    ASSERT_EQ(test.size(), 10000);
    EXPECT_EQ(train.shape(), (minicnn::Shape{60000, 28, 28, 1}));
    EXPECT_EQ(test.shape(), (minicnn::Shape{10000, 28, 28, 1}));
    // Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
    std::vector<int> train_counts(10), test_counts(10);
    for (std::int32_t l : train.labels) {
        ASSERT_TRUE(l >= 0 && l < 10) << l;
        ++train_counts[l];
    }
    for (std::int32_t l : test.labels) {
        ASSERT_TRUE(l >= 0 && l < 10) << l;
        ++test_counts[l];
    }
    EXPECT_EQ(train_counts, std::vector<int>(10, 6000));
    EXPECT_EQ(test_counts, std::vector<int>(10, 1000));
    // Pixels are 8-bit and both ends occur; the first training label is 9 (ankle boot).
    EXPECT_EQ(train.pixels.size(), std::size_t(60000) * 784);
    EXPECT_EQ(*std::min_element(train.pixels.begin(), train.pixels.end()), 0);
    EXPECT_EQ(*std::max_element(train.pixels.begin(), train.pixels.end()), 255);
    EXPECT_EQ(train.labels[0], 9);
    // The exercise's split: 50,000 training and 10,000 validation images.
    minicnn::Dataset val = minicnn::split_tail(train, 10000);
    EXPECT_EQ(train.size(), 50000);
    EXPECT_EQ(val.size(), 10000);
    EXPECT_EQ(val.pixels.size(), std::size_t(10000) * 784);
}

}  // namespace

namespace {

// The fuzzers' seed corpus (written by fuzz/make_corpus.py with Python's gzip and struct, an
// independent writer): the well-formed seeds parse, every broken one is an ArgumentError.
TEST(IdxSeedCorpus, ValidSeedsParseAndBrokenSeedsAreRejected) {
    const std::filesystem::path dir = std::filesystem::path(MINICNN_SOURCE_DIR) / "fuzz/corpus/idx";
    if (!std::filesystem::exists(dir)) GTEST_SKIP() << "seed corpus " << dir << " is absent";
    const std::vector<std::string> images_ok = {"images-2x3x4", "images-2x3x4.gz",
                                                "images-1x28x28.gz", "multi-member.gz"};
    const std::vector<std::string> labels_ok = {"labels-5", "labels-5.gz"};
    int seen = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        SCOPED_TRACE(name);
        ++seen;
        const bool img = std::find(images_ok.begin(), images_ok.end(), name) != images_ok.end();
        const bool lab = std::find(labels_ok.begin(), labels_ok.end(), name) != labels_ok.end();
        if (img) {
            minicnn::IdxImages im = minicnn::read_idx_images(e.path().string());
            EXPECT_EQ(im.pixels.size(), static_cast<std::size_t>(im.count * im.rows * im.cols));
        } else {
            EXPECT_THROW(minicnn::read_idx_images(e.path().string()), ArgumentError);
        }
        if (lab) {
            EXPECT_EQ(minicnn::read_idx_labels(e.path().string()), (Bytes{0, 9, 3, 3, 7}));
        } else {
            EXPECT_THROW(minicnn::read_idx_labels(e.path().string()), ArgumentError);
        }
    }
    EXPECT_GE(seen, 6);
    auto multi = minicnn::read_idx_images((dir / "multi-member.gz").string());
    auto single = minicnn::read_idx_images((dir / "images-2x3x4").string());
    EXPECT_EQ(multi.pixels, single.pixels);
}

}  // namespace
