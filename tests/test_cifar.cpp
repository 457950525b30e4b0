// tests/test_cifar.cpp — the CIFAR-10 binary reader and the data directory's format detection
// (minicnn/cifar.h), on small files written into a temporary directory: a pixel's place and channel
// and its scaling, several data batches in order, a size that is not a whole number of records, a
// bad label, a missing test batch, a gap in the batch numbers, an IDX directory, and a directory
// with neither format. Nothing is downloaded.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "minicnn/cifar.h"
#include "test_util.h"

namespace {

using minicnn::test::error_of;
using Bytes = std::vector<std::uint8_t>;

// n records with labels first_label, first_label + 1, ... (mod 10); pixel (y, x) of channel c in
// record i is (i * 7 + c * 50 + y * 3 + x) % 256.
Bytes cifar_records(int n, int first_label = 0) {
    Bytes b;
    for (int i = 0; i < n; ++i) {
        b.push_back(std::uint8_t((first_label + i) % 10));
        for (int c = 0; c < 3; ++c)
            for (int y = 0; y < 32; ++y)
                for (int x = 0; x < 32; ++x)
                    b.push_back(std::uint8_t((i * 7 + c * 50 + y * 3 + x) % 256));
    }
    return b;
}

class Cifar : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ =
            (std::filesystem::temp_directory_path() / "minicnn-cifar-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    void write(const std::string& name, const Bytes& b) {
        std::ofstream f(dir_ + "/" + name, std::ios::binary);
        f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
    }
    std::string dir_;
};

TEST_F(Cifar, LoadsRecordsAsNhwcScaledToOne) {
    write("data_batch_1.bin", cifar_records(3, 4));
    write("test_batch.bin", cifar_records(2, 9));
    EXPECT_EQ(minicnn::detect_data_format(dir_), minicnn::DataFormat::cifar10);
    const minicnn::Dataset tr = minicnn::load_dataset(dir_, "train");
    ASSERT_EQ(tr.shape(), (minicnn::Shape{3, 32, 32, 3}));
    EXPECT_EQ(tr.labels, (std::vector<std::int32_t>{4, 5, 6}));
    // 8-bit in memory; unit_images scales them as the batch gathers do.
    EXPECT_EQ(tr.pixels[((2 * 32 + 5) * 32 + 7) * 3 + 1], 86);
    const minicnn::Tensor images = minicnn::unit_images(tr);
    const float* px = images.data<float>();
    // Record 2, row 5, column 7, channel G (1): byte (2*7 + 50 + 15 + 7) % 256 = 86.
    EXPECT_FLOAT_EQ(px[((2 * 32 + 5) * 32 + 7) * 3 + 1], 86.0f / 255.0f);
    // Record 1, row 31, column 31, channel B (2): (7 + 100 + 93 + 31) % 256 = 231.
    EXPECT_FLOAT_EQ(px[((1 * 32 + 31) * 32 + 31) * 3 + 2], 231.0f / 255.0f);
    // Record 0, row 0, column 0, channel R: 0.
    EXPECT_EQ(px[0], 0.0f);
    const minicnn::Dataset te = minicnn::load_dataset(dir_, "test");
    EXPECT_EQ(te.size(), 2);
    EXPECT_EQ(te.labels, (std::vector<std::int32_t>{9, 0}));
}

TEST_F(Cifar, SeveralDataBatchesAreJoinedInTheOrderOfTheirNumbers) {
    write("data_batch_2.bin", cifar_records(1, 7));
    write("data_batch_10.bin", cifar_records(1, 1));  // after 9, not after 1
    for (int k : {1, 3, 4, 5, 6, 7, 8, 9})
        write("data_batch_" + std::to_string(k) + ".bin", cifar_records(1, k == 1 ? 0 : 2));
    write("test_batch.bin", cifar_records(1));
    const minicnn::Dataset tr = minicnn::load_cifar_dataset(dir_, "train");
    ASSERT_EQ(tr.size(), 10);
    EXPECT_EQ(tr.labels.front(), 0);
    EXPECT_EQ(tr.labels[1], 7);
    EXPECT_EQ(tr.labels.back(), 1);
    EXPECT_EQ(tr.shape(), (minicnn::Shape{10, 32, 32, 3}));
}

TEST_F(Cifar, ASizeThatIsNotAWholeNumberOfRecordsNamesTheFileAndItsSize) {
    Bytes b = cifar_records(2);
    b.pop_back();
    write("data_batch_1.bin", b);
    const std::string e = error_of([&] { minicnn::load_dataset(dir_, "train"); });
    EXPECT_NE(e.find("data_batch_1.bin"), std::string::npos) << e;
    EXPECT_NE(e.find("6145 bytes"), std::string::npos) << e;
    EXPECT_NE(e.find("3073"), std::string::npos) << e;
}

TEST_F(Cifar, ABadLabelNamesTheFileTheRecordAndTheValue) {
    Bytes b = cifar_records(3);
    b[2 * 3073] = 10;
    write("test_batch.bin", b);
    const std::string e = error_of([&] { minicnn::load_dataset(dir_, "test"); });
    EXPECT_NE(e.find("test_batch.bin"), std::string::npos) << e;
    EXPECT_NE(e.find("record 2 has label 10"), std::string::npos) << e;
}

TEST_F(Cifar, AMissingTestBatchOrAGapInTheDataBatchesIsNamed) {
    write("data_batch_1.bin", cifar_records(1));
    write("data_batch_3.bin", cifar_records(1));
    std::string e = error_of([&] { minicnn::load_dataset(dir_, "test"); });
    EXPECT_NE(e.find("test_batch.bin"), std::string::npos) << e;
    e = error_of([&] { minicnn::load_dataset(dir_, "train"); });
    EXPECT_NE(e.find("data_batch_2.bin is missing"), std::string::npos) << e;
}

TEST_F(Cifar, ADirectoryWithNeitherFormatSaysWhatWasLookedFor) {
    write("readme.txt", Bytes{'h', 'i'});
    const std::string e = error_of([&] { minicnn::load_dataset(dir_, "train"); });
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    for (const char* what : {"train-images-idx3-ubyte", "data_batch_1.bin", "test_batch.bin"})
        EXPECT_NE(e.find(what), std::string::npos) << what << " in " << e;
    const std::string missing = error_of([&] { minicnn::load_dataset(dir_ + "/nope", "test"); });
    EXPECT_NE(missing.find("/nope"), std::string::npos) << missing;
}

TEST_F(Cifar, AnIdxDirectoryIsFoundAsIdx) {
    write("t10k-images-idx3-ubyte", Bytes{0, 0, 8, 3});
    EXPECT_EQ(minicnn::detect_data_format(dir_), minicnn::DataFormat::idx);
    write("test_batch.bin", cifar_records(1));
    const std::string e = error_of([&] { minicnn::detect_data_format(dir_); });
    EXPECT_NE(e.find("both"), std::string::npos) << e;
}

}  // namespace
