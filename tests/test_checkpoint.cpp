// tests/test_checkpoint.cpp — checkpoint format: round trips (every dtype, empty and rank-0 arrays,
// binary metadata), corruption detection (every flipped byte and bit, truncation at every length,
// wrong magic, newer version, lengths that lie about the data), and atomic saves that leave the
// previous checkpoint intact when writing fails.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "test_util.h"
#include "minicnn/checkpoint.h"

namespace {

using minicnn::ArgumentError;
using minicnn::test::error_of;
using minicnn::Checkpoint;
using Bytes = std::vector<std::uint8_t>;


Checkpoint sample() {
    Checkpoint ck;
    ck.set("epoch", "3");
    ck.set("step", "4689");
    ck.set("rng", "mt19937 5489 0 1 2 3");
    ck.set("model",
           "lenet5: conv(6,5x5,same,relu) pool conv(16,5x5,valid,relu) pool dense dense dense");
    ck.set("binary", std::string("a\0b\xff", 4));
    ck.add_tensor("conv1.W",
                  minicnn::Tensor::from<float>({2, 2, 1, 2}, {1, -2, 3.5f, 4, 5, 6, 7, 8}));
    ck.add_tensor("conv1.b", minicnn::Tensor::from<double>({1, 1, 1, 2}, {0.25, -1e-300}));
    ck.add_tensor("mask", minicnn::Tensor::from<std::int32_t>({3}, {0, -1, 2147483647}));
    ck.add_tensor("empty", minicnn::Tensor({0, 4}, minicnn::DType::f32));
    ck.add_tensor("scalar", minicnn::Tensor::from<float>({}, {42.0f}));
    return ck;
}

void expect_same(const Checkpoint& a, const Checkpoint& b) {
    EXPECT_EQ(a.meta, b.meta);
    ASSERT_EQ(a.arrays.size(), b.arrays.size());
    for (std::size_t i = 0; i < a.arrays.size(); ++i) {
        EXPECT_EQ(a.arrays[i].name, b.arrays[i].name);
        EXPECT_EQ(a.arrays[i].dtype, b.arrays[i].dtype);
        EXPECT_EQ(a.arrays[i].shape, b.arrays[i].shape);
        EXPECT_EQ(a.arrays[i].bytes, b.arrays[i].bytes);
    }
}

void put_le(Bytes& b, std::size_t at, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// Recomputes the trailing CRC32 so that a deliberately edited file passes the checksum and reaches
// the structural checks behind it.
void fix_crc(Bytes& b) {
    const std::size_t body = b.size() - 4;
    put_le(b, body, crc32_z(crc32_z(0L, Z_NULL, 0), b.data(), body), 4);
}

class CheckpointTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ =
            (std::filesystem::temp_directory_path() / "minicnn-ckpt-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    std::vector<std::string> dir_entries() const {
        std::vector<std::string> out;
        for (const auto& e : std::filesystem::directory_iterator(dir_))
            out.push_back(e.path().filename());
        std::sort(out.begin(), out.end());
        return out;
    }
    std::string tmp_of(const std::string& path) const {
        return path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
    }
    std::string dir_;
};

// ---- round trips --------------------------------------------------------------------------------

TEST_F(CheckpointTest, RoundTripThroughAFile) {
    const Checkpoint ck = sample();
    const std::string p = dir_ + "/model.ckpt";
    minicnn::save_checkpoint(p, ck);
    const Checkpoint back = minicnn::load_checkpoint(p);
    expect_same(ck, back);
    EXPECT_EQ(back.get("epoch"), "3");
    EXPECT_EQ(back.get("binary"), std::string("a\0b\xff", 4));
    minicnn::Tensor w = back.array("conv1.W").to_tensor();
    EXPECT_EQ(w.shape(), (minicnn::Shape{2, 2, 1, 2}));
    EXPECT_EQ(w.data<float>()[2], 3.5f);
    minicnn::Tensor b = back.array("conv1.b").to_tensor();
    EXPECT_EQ(b.data<double>()[1], -1e-300);
    EXPECT_EQ(back.array("mask").to_tensor().data<std::int32_t>()[2], 2147483647);
    EXPECT_EQ(back.array("empty").to_tensor().shape(), (minicnn::Shape{0, 4}));
    EXPECT_EQ(back.array("scalar").to_tensor().data<float>()[0], 42.0f);
    EXPECT_EQ(dir_entries(), std::vector<std::string>{"model.ckpt"});  // no temporary left behind
}

TEST_F(CheckpointTest, EmptyCheckpointAndOverwrite) {
    const std::string p = dir_ + "/c";
    minicnn::save_checkpoint(p, Checkpoint{});
    Checkpoint back = minicnn::load_checkpoint(p);
    EXPECT_TRUE(back.meta.empty());
    EXPECT_TRUE(back.arrays.empty());
    minicnn::save_checkpoint(p, sample());
    expect_same(minicnn::load_checkpoint(p), sample());
    EXPECT_EQ(dir_entries(), std::vector<std::string>{"c"});
}

TEST(CheckpointFormat, LayoutIsAsDocumented) {
    Checkpoint ck;
    ck.set("k", "vv");
    ck.add_tensor("a", minicnn::Tensor::from<std::int32_t>({1}, {7}));
    const Bytes b = minicnn::serialize_checkpoint(ck);
    // header 32 + meta (4+1+8+2) + array (4+1+4+4+8+8+4) + crc 4
    ASSERT_EQ(b.size(), 32u + 15u + 33u + 4u);
    EXPECT_EQ(std::memcmp(b.data(), "MCNNCKPT", 8), 0);
    EXPECT_EQ(b[8], 1);          // version
    EXPECT_EQ(b[16], b.size());  // file_size, little-endian
    EXPECT_EQ(b[24], 1);         // meta_count
    EXPECT_EQ(b[28], 1);         // array_count
    EXPECT_EQ(b[32], 1);         // key length
    EXPECT_EQ(b[36], 'k');
    EXPECT_EQ(b[37], 2);  // value length
    EXPECT_EQ(b[47], 1);  // name length
    EXPECT_EQ(b[51], 'a');
    EXPECT_EQ(b[52], 2);  // dtype int32
    EXPECT_EQ(b[56], 1);  // rank
    EXPECT_EQ(b[60], 1);  // dim 0
    EXPECT_EQ(b[68], 4);  // nbytes
    EXPECT_EQ(b[76], 7);  // the value
}

TEST(CheckpointApi, LookupsNameWhatIsMissing) {
    const Checkpoint ck = sample();
    std::string msg = error_of([&] { ck.get("lr"); });
    EXPECT_CONTAINS(msg, "no metadata key 'lr'");
    EXPECT_CONTAINS(msg, "'epoch', 'step'");
    msg = error_of([&] { ck.array("dense1.W"); });
    EXPECT_CONTAINS(msg, "no array 'dense1.W'");
    EXPECT_CONTAINS(msg, "'conv1.W'");
    Checkpoint c2 = sample();
    c2.set("epoch", "4");  // replaces, keeps one entry
    EXPECT_EQ(c2.get("epoch"), "4");
    EXPECT_EQ(c2.meta.size(), sample().meta.size());
}

TEST(CheckpointApi, SaveRejectsInconsistentArrays) {
    Checkpoint ck;
    minicnn::CheckpointArray a;
    a.name = "w";
    a.shape = {2, 3};
    a.bytes.resize(20);  // 6 floats need 24
    ck.arrays.push_back(a);
    EXPECT_CONTAINS(error_of([&] { minicnn::serialize_checkpoint(ck); }),
                    "needs 24 bytes, found 20");
    ck.arrays[0].bytes.resize(24);
    ck.arrays.push_back(ck.arrays[0]);
    EXPECT_CONTAINS(error_of([&] { minicnn::serialize_checkpoint(ck); }), "'w' appears twice");
    ck.arrays.pop_back();
    ck.meta.emplace_back("", "x");
    EXPECT_CONTAINS(error_of([&] { minicnn::serialize_checkpoint(ck); }), "metadata key is empty");
}

// ---- corruption ---------------------------------------------------------------------------------

TEST(CheckpointCorruption, EveryFlippedByteAndBitIsDetected) {
    const Bytes good = minicnn::serialize_checkpoint(sample());
    ASSERT_NO_THROW(minicnn::parse_checkpoint(good.data(), good.size(), "good"));
    for (std::size_t i = 0; i < good.size(); ++i) {
        Bytes bad = good;
        bad[i] ^= 0xff;
        EXPECT_THROW(minicnn::parse_checkpoint(bad.data(), bad.size(), "bad"), ArgumentError)
            << "byte " << i << " of " << good.size();
        for (int bit = 0; bit < 8; ++bit) {
            bad = good;
            bad[i] ^= static_cast<std::uint8_t>(1u << bit);
            EXPECT_THROW(minicnn::parse_checkpoint(bad.data(), bad.size(), "bad"), ArgumentError)
                << "byte " << i << " bit " << bit;
        }
    }
    // A flipped data byte is reported as a checksum mismatch naming the file.
    Bytes bad = good;
    bad[good.size() - 10] ^= 0x20;
    const std::string msg =
        error_of([&] { minicnn::parse_checkpoint(bad.data(), bad.size(), "x.ckpt"); });
    EXPECT_CONTAINS(msg, "checkpoint 'x.ckpt': checksum mismatch");
}

TEST(CheckpointCorruption, TruncationAtEveryLengthIsDetected) {
    const Bytes good = minicnn::serialize_checkpoint(sample());
    for (std::size_t len = 0; len < good.size(); ++len) {
        const std::string msg = error_of([&] { minicnn::parse_checkpoint(good.data(), len, "t"); });
        EXPECT_CONTAINS(msg, "truncated") << "length " << len;
    }
    std::string msg = error_of([&] { minicnn::parse_checkpoint(good.data(), 20, "t"); });
    EXPECT_CONTAINS(msg, "the file has 20 bytes, a checkpoint has at least 36");
    msg = error_of([&] { minicnn::parse_checkpoint(good.data(), good.size() - 1, "t"); });
    EXPECT_CONTAINS(msg, "(1 missing)");
    Bytes longer = good;
    longer.push_back(0);
    msg = error_of([&] { minicnn::parse_checkpoint(longer.data(), longer.size(), "t"); });
    EXPECT_CONTAINS(msg, "trailing bytes");
    EXPECT_CONTAINS(msg, "(1 extra)");
}

TEST(CheckpointCorruption, WrongMagicAndNewerVersion) {
    Bytes b = minicnn::serialize_checkpoint(sample());
    Bytes other = b;
    std::memcpy(other.data(), "PK\x03\x04zip!", 8);
    std::string msg =
        error_of([&] { minicnn::parse_checkpoint(other.data(), other.size(), "f.zip"); });
    EXPECT_CONTAINS(msg, "checkpoint 'f.zip': not a minicnn checkpoint");
    EXPECT_CONTAINS(msg, "\"PK\\x03\\x04zip!\"");
    EXPECT_CONTAINS(msg, "expected the magic \"MCNNCKPT\"");

    put_le(b, 8, 2, 4);
    fix_crc(b);
    msg = error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "new"); });
    EXPECT_CONTAINS(msg,
                    "format version 2 is newer than this build of minicnn reads (up to version 1)");
    put_le(b, 8, 0, 4);
    fix_crc(b);
    EXPECT_CONTAINS(error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "z"); }),
                    "invalid format version 0");
}

TEST(CheckpointCorruption, LengthsThatLieAreCheckedBeforeAllocating) {
    Checkpoint ck;
    ck.set("k", "v");
    ck.add_tensor("w", minicnn::Tensor::from<float>({2}, {1, 2}));
    const Bytes good = minicnn::serialize_checkpoint(ck);
    // Offsets: meta entry at 32 (key_len 32, key 36, value_len 37, value 45);
    // array at 46 (name_len 46, name 50, dtype 51, rank 55, dim 59, nbytes 67, data 75).
    Bytes b = good;
    put_le(b, 37, std::uint64_t{1} << 60, 8);  // value length 2^60
    fix_crc(b);
    std::string msg = error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "lie"); });
    EXPECT_CONTAINS(msg, "value needs 1152921504606846976 bytes at offset 45");

    b = good;
    put_le(b, 32, 0xffffffffu, 4);  // key length 2^32 - 1
    fix_crc(b);
    EXPECT_CONTAINS(error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "lie"); }),
                    "metadata entry 0 key needs 4294967295 bytes");

    b = good;
    put_le(b, 59, std::uint64_t{1} << 40, 8);  // dim 2^40: 2^42 bytes of float32
    put_le(b, 67, std::uint64_t{1} << 42, 8);
    fix_crc(b);
    msg = error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "lie"); });
    EXPECT_CONTAINS(msg, "array 0 ('w') data needs 4398046511104 bytes");

    b = good;
    put_le(b, 67, 12, 8);  // nbytes disagrees with the shape
    fix_crc(b);
    msg = error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "lie"); });
    EXPECT_CONTAINS(msg, "of shape (2,) and dtype float32 needs 8 bytes, the file says 12");

    b = good;
    put_le(b, 51, 7, 4);  // dtype code
    fix_crc(b);
    EXPECT_CONTAINS(error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "lie"); }),
                    "unknown dtype code 7");

    b = good;
    put_le(b, 55, 1000, 4);  // rank
    fix_crc(b);
    EXPECT_CONTAINS(error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "lie"); }),
                    "has rank 1000, at most 8");

    b = good;
    put_le(b, 59, ~std::uint64_t{0}, 8);  // dimension -1
    fix_crc(b);
    EXPECT_CONTAINS(error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "lie"); }),
                    "negative dimension");

    b = good;
    put_le(b, 28, 0xffffffffu, 4);  // array count
    fix_crc(b);
    EXPECT_CONTAINS(error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "lie"); }),
                    "array 1 name length needs 4 bytes");

    b = good;
    put_le(b, 28, 0, 4);  // fewer arrays than the file holds
    fix_crc(b);
    EXPECT_CONTAINS(error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "lie"); }),
                    "37 unexpected bytes at offset 46 after the last array");

    b = good;
    put_le(b, 12, 1, 4);  // flags
    fix_crc(b);
    EXPECT_CONTAINS(error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "lie"); }),
                    "unknown flags 0x00000001");
}

TEST(CheckpointCorruption, DuplicateNamesInAFileAreRejected) {
    Checkpoint ck;
    ck.set("a", "1");
    ck.set("b", "2");
    Bytes b = minicnn::serialize_checkpoint(ck);
    b[32 + 4 + 1 + 8 + 1 + 4] = 'a';  // the second key becomes "a"
    fix_crc(b);
    EXPECT_CONTAINS(error_of([&] { minicnn::parse_checkpoint(b.data(), b.size(), "dup"); }),
                    "metadata key 'a' appears twice");
}

// ---- files and atomic saves ---------------------------------------------------------------------

TEST_F(CheckpointTest, MissingFileIsNamed) {
    const std::string p = dir_ + "/none.ckpt";
    std::string msg = error_of([&] { minicnn::load_checkpoint(p); });
    EXPECT_CONTAINS(msg, "checkpoint file '" + p + "' not found");
    EXPECT_CONTAINS(error_of([&] { minicnn::load_checkpoint(dir_); }), "is not a regular file");
}

TEST_F(CheckpointTest, LoadNamesTheFileInFormatErrors) {
    const std::string p = dir_ + "/junk.ckpt";
    FILE* f = std::fopen(p.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs("not a checkpoint at all, just text", f);
    std::fclose(f);
    EXPECT_CONTAINS(error_of([&] { minicnn::load_checkpoint(p); }),
                    "checkpoint '" + p + "': not a minicnn checkpoint");
}

TEST_F(CheckpointTest, SaveIntoMissingDirectoryFailsCleanly) {
    const std::string p = dir_ + "/no/such/dir/model.ckpt";
    const std::string msg = error_of([&] { minicnn::save_checkpoint(p, sample()); });
    EXPECT_CONTAINS(msg, "save_checkpoint: cannot write '" + p + "'");
    EXPECT_CONTAINS(msg, "No such file or directory");
    EXPECT_TRUE(dir_entries().empty());
}

TEST_F(CheckpointTest, FailedWriteLeavesThePreviousCheckpointAndNoTemporary) {
    const std::string p = dir_ + "/model.ckpt";
    Checkpoint v1 = sample();
    v1.set("epoch", "1");
    minicnn::save_checkpoint(p, v1);
    Checkpoint v2 = sample();
    v2.set("epoch", "2");

    // The disk fills up while writing: the temporary file is a link to /dev/full (ENOSPC on flush).
    if (std::filesystem::exists("/dev/full")) {
        std::filesystem::create_symlink("/dev/full", tmp_of(p));
        const std::string msg = error_of([&] { minicnn::save_checkpoint(p, v2); });
        EXPECT_CONTAINS(msg, "No space left on device");
        EXPECT_CONTAINS(msg, "the previous checkpoint, if any, is unchanged");
        EXPECT_EQ(minicnn::load_checkpoint(p).get("epoch"), "1");
        EXPECT_EQ(dir_entries(), std::vector<std::string>{"model.ckpt"});  // temporary removed
    }

    // The temporary file cannot be created (a directory is in the way).
    std::filesystem::create_directory(tmp_of(p));
    std::string msg = error_of([&] { minicnn::save_checkpoint(p, v2); });
    EXPECT_CONTAINS(msg, "creating the temporary file");
    EXPECT_EQ(minicnn::load_checkpoint(p).get("epoch"), "1");
    std::filesystem::remove(tmp_of(p));

    // The rename fails: the target is a non-empty directory. The temporary file is removed.
    const std::string d = dir_ + "/target";
    std::filesystem::create_directories(d + "/inside");
    msg = error_of([&] { minicnn::save_checkpoint(d, v2); });
    EXPECT_CONTAINS(msg, "renaming over the target");
    EXPECT_FALSE(std::filesystem::exists(tmp_of(d)));

    // An invalid checkpoint is refused before the file is touched.
    Checkpoint bad;
    bad.meta.emplace_back("", "");
    EXPECT_THROW(minicnn::save_checkpoint(p, bad), ArgumentError);
    EXPECT_EQ(minicnn::load_checkpoint(p).get("epoch"), "1");

    minicnn::save_checkpoint(p, v2);
    EXPECT_EQ(minicnn::load_checkpoint(p).get("epoch"), "2");
    EXPECT_EQ(dir_entries(), (std::vector<std::string>{"model.ckpt", "target"}));
}

}  // namespace

namespace {

// fuzz/make_corpus.py writes checkpoints with an independent (Python) implementation of the format;
// the C++ loader must read them and reproduce them byte for byte.
TEST(CheckpointFormat, IndependentPythonWriterAgrees) {
    const std::string p = std::string(MINICNN_SOURCE_DIR) + "/fuzz/corpus/checkpoint/valid";
    if (!std::filesystem::exists(p)) GTEST_SKIP() << "seed corpus file " << p << " is absent";
    const Checkpoint ck = minicnn::load_checkpoint(p);
    EXPECT_EQ(ck.get("epoch"), "3");
    EXPECT_EQ(ck.get("optimizer"), "adam lr=0.001 b1=0.9 b2=0.999");
    minicnn::Tensor w = ck.array("conv1.W").to_tensor();
    EXPECT_EQ(w.shape(), (minicnn::Shape{2, 2, 1, 1}));
    EXPECT_EQ(w.data<float>()[1], -2.0f);
    EXPECT_EQ(ck.array("conv1.b").to_tensor().data<double>()[0], 0.25);
    EXPECT_EQ(ck.array("mask").to_tensor().data<std::int32_t>()[2], -1);
    EXPECT_EQ(ck.array("empty").shape, (minicnn::Shape{0, 5}));
    EXPECT_EQ(ck.array("scalar").to_tensor().data<float>()[0], 42.0f);

    std::FILE* f = std::fopen(p.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    Bytes file(4096);
    file.resize(std::fread(file.data(), 1, file.size(), f));
    std::fclose(f);
    EXPECT_EQ(minicnn::serialize_checkpoint(ck), file);

    const std::string dir = std::string(MINICNN_SOURCE_DIR) + "/fuzz/corpus/checkpoint/";
    EXPECT_CONTAINS(error_of([&] { minicnn::load_checkpoint(dir + "bad-crc"); }),
                    "checksum mismatch");
    EXPECT_CONTAINS(error_of([&] { minicnn::load_checkpoint(dir + "newer-version"); }), "newer");
    EXPECT_CONTAINS(error_of([&] { minicnn::load_checkpoint(dir + "truncated"); }), "truncated");
}

}  // namespace
