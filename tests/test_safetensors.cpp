// tests/test_safetensors.cpp — the safetensors format of minicnn/export.h: round trips (dtypes,
// empty and rank-0 tensors, metadata), the documented layout, and bad files — truncated at every
// length, a huge or lying header length, offsets that overlap, leave a hole, end before they begin
// or past the file, a wrong dtype or shape, unknown or missing names, duplicate names, JSON that is
// not the format — each an ArgumentError naming what was wrong, never a crash. Then the model's
// weights in PyTorch's layouts (OIHW, (out, in), the (c, h, w) reordering after a Flatten), read
// back bit for bit, and the files (atomic writes, errors that leave the weights unchanged).
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "minicnn/export.h"
#include "minicnn/model.h"
#include "test_util.h"

namespace {

using minicnn::Safetensors;
using minicnn::SafetensorsTensor;
using minicnn::test::error_of;
using Bytes = std::vector<std::uint8_t>;

SafetensorsTensor tensor(const std::string& name, const std::string& dtype, minicnn::Shape shape,
                         std::size_t elem) {
    SafetensorsTensor t{name, dtype, shape, {}};
    t.bytes.resize(std::size_t(minicnn::shape_numel(shape)) * elem);
    for (std::size_t i = 0; i < t.bytes.size(); ++i) t.bytes[i] = std::uint8_t(i * 7 + name.size());
    return t;
}

Safetensors sample() {
    Safetensors st;
    st.metadata = {{"format", "pt"}, {"note", "a \"quoted\" value"}};
    st.tensors.push_back(tensor("conv2d.weight", "F32", {6, 1, 5, 5}, 4));
    st.tensors.push_back(tensor("conv2d.bias", "F32", {6}, 4));
    st.tensors.push_back(tensor("steps", "I64", {}, 8));
    st.tensors.push_back(tensor("empty", "F64", {0, 3}, 8));
    st.tensors.push_back(tensor("half", "BF16", {3, 2}, 2));
    return st;
}

Safetensors parse(const Bytes& b) {
    return minicnn::parse_safetensors(b.data(), b.size(), "t.safetensors");
}

// A file from a header written by hand and `data_len` bytes of data.
Bytes file_of(const std::string& header, std::size_t data_len) {
    Bytes b(8 + header.size() + data_len, 0);
    const std::uint64_t n = header.size();
    std::memcpy(b.data(), &n, 8);
    std::memcpy(b.data() + 8, header.data(), header.size());
    return b;
}

std::string parse_error(const std::string& header, std::size_t data_len) {
    const Bytes b = file_of(header, data_len);
    return error_of([&] { parse(b); });
}

TEST(SafetensorsFormat, RoundTrip) {
    const Safetensors st = sample();
    const Safetensors back = parse(minicnn::serialize_safetensors(st));
    EXPECT_EQ(back.metadata, st.metadata);
    ASSERT_EQ(back.tensors.size(), st.tensors.size());
    for (std::size_t i = 0; i < st.tensors.size(); ++i) {
        const SafetensorsTensor* t = back.find(st.tensors[i].name);
        ASSERT_NE(t, nullptr) << st.tensors[i].name;
        EXPECT_EQ(t->dtype, st.tensors[i].dtype);
        EXPECT_EQ(t->shape, st.tensors[i].shape);
        EXPECT_EQ(t->bytes, st.tensors[i].bytes);
    }
    EXPECT_EQ(back.find("nothing"), nullptr);
    // An empty file of tensors is valid too.
    EXPECT_TRUE(parse(minicnn::serialize_safetensors(Safetensors{})).tensors.empty());
}

TEST(SafetensorsFormat, LayoutIsAsDocumented) {
    Safetensors st;
    st.tensors.push_back(tensor("a", "F32", {2}, 4));
    st.tensors.push_back(tensor("b", "U8", {3}, 1));
    const Bytes b = minicnn::serialize_safetensors(st);
    std::uint64_t n = 0;
    std::memcpy(&n, b.data(), 8);
    EXPECT_EQ(n % 8, 0u);  // the header is padded to a multiple of 8
    ASSERT_EQ(b.size(), 8 + n + 11);
    std::string header(reinterpret_cast<const char*>(b.data() + 8), n);
    EXPECT_EQ(header.substr(0, header.find_last_not_of(' ') + 1),
              R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
              R"("b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}})");
    EXPECT_TRUE(std::equal(st.tensors[1].bytes.begin(), st.tensors[1].bytes.end(), b.end() - 3));
}

TEST(SafetensorsFormat, SerializeRefusesInconsistentTensors) {
    Safetensors st;
    st.tensors.push_back(tensor("a", "F32", {2}, 4));
    st.tensors.push_back(tensor("a", "F32", {2}, 4));
    EXPECT_CONTAINS(error_of([&] { minicnn::serialize_safetensors(st); }), "'a' appears twice");
    st.tensors.pop_back();
    st.tensors[0].bytes.pop_back();
    EXPECT_CONTAINS(error_of([&] { minicnn::serialize_safetensors(st); }), "holds 7 bytes");
    st.tensors[0] = tensor("x", "F31", {1}, 4);
    EXPECT_CONTAINS(error_of([&] { minicnn::serialize_safetensors(st); }), "dtype F31");
}

TEST(SafetensorsCorruption, TruncationAtEveryLengthIsAnError) {
    const Bytes good = minicnn::serialize_safetensors(sample());
    for (std::size_t len = 0; len < good.size(); ++len) {
        const Bytes b(good.begin(), good.begin() + std::ptrdiff_t(len));
        const std::string msg = error_of([&] { parse(b); });
        EXPECT_CONTAINS(msg, "safetensors file 't.safetensors'") << "length " << len;
    }
    EXPECT_CONTAINS(error_of([&] { parse(Bytes(5, 0)); }), "truncated: 5 bytes");
}

TEST(SafetensorsCorruption, HugeHeaderLengthIsRefusedBeforeReading) {
    for (std::uint64_t n :
         {std::uint64_t(1) << 63, ~std::uint64_t(0), std::uint64_t(1) << 40, std::uint64_t(9)}) {
        Bytes b = file_of("{}", 0);
        std::memcpy(b.data(), &n, 8);
        const std::string msg = error_of([&] { parse(b); });
        EXPECT_CONTAINS(msg, "the header length " + std::to_string(n) + " exceeds the 2 bytes");
    }
}

TEST(SafetensorsCorruption, OffsetsThatLie) {
    const std::string a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":)";
    const std::string b = R"("b":{"dtype":"F32","shape":[1],"data_offsets":)";
    EXPECT_CONTAINS(parse_error("{" + a + "[0,8]}}", 4), "exceed the data section of 4 bytes");
    EXPECT_CONTAINS(parse_error("{" + a + "[0,8]}," + b + "[4,8]}}", 8),
                    "tensor 'b' data_offsets [4, 8] overlap tensor 'a' [0, 8]");
    EXPECT_CONTAINS(parse_error("{" + a + "[4,12]}}", 12),
                    "begins at 4 but the data before it "
                    "ends at 0 (a hole");
    EXPECT_CONTAINS(parse_error("{" + a + "[0,8]}}", 12),
                    "the tensors end at 8 but the data "
                    "section holds 12 bytes");
    EXPECT_CONTAINS(parse_error("{" + a + "[8,0]}}", 8), "data_offsets [8, 0] end before");
    EXPECT_CONTAINS(parse_error("{" + a + "[0,4]}}", 4),
                    "need 8 bytes, data_offsets [0, 4] hold 4");
    EXPECT_CONTAINS(parse_error("{" + a + "[0,-8]}}", 8), "data_offsets must be [begin, end]");
    EXPECT_CONTAINS(parse_error("{" + a + "[0,18446744073709551615]}}", 8),
                    "data_offsets must be [begin, end]");
    EXPECT_CONTAINS(parse_error("{" + a + "[0]}}", 8), "data_offsets must be [begin, end]");
    EXPECT_CONTAINS(
        parse_error(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})",
                    8),
        "is too large");
}

TEST(SafetensorsCorruption, HeadersThatAreNotTheFormat) {
    EXPECT_CONTAINS(parse_error("{\"a\":", 0), "header is not valid JSON");
    EXPECT_CONTAINS(parse_error("[1,2]", 0), "must be a JSON object, got array");
    EXPECT_CONTAINS(parse_error(R"({"a":3})", 0), "tensor 'a': expected an object");
    EXPECT_CONTAINS(parse_error(R"({"a":{"dtype":"F32","shape":[0]}})", 0),
                    "tensor 'a': the field 'data_offsets' is missing");
    EXPECT_CONTAINS(
        parse_error(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"x":1}})", 0),
        "tensor 'a': unknown field 'x'");
    EXPECT_CONTAINS(parse_error(R"({"a":{"dtype":"F33","shape":[0],"data_offsets":[0,0]}})", 0),
                    "tensor 'a': unknown dtype 'F33'");
    EXPECT_CONTAINS(parse_error(R"({"a":{"dtype":4,"shape":[0],"data_offsets":[0,0]}})", 0),
                    "dtype must be a string");
    EXPECT_CONTAINS(parse_error(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0),
                    "holds -1 (sizes are integers >= 0)");
    EXPECT_CONTAINS(parse_error(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4),
                    "holds 1.5");
    EXPECT_CONTAINS(parse_error(R"({"a":{"dtype":"F32","shape":3,"data_offsets":[0,4]}})", 4),
                    "shape must be an array");
    EXPECT_CONTAINS(parse_error(R"({"":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})", 0),
                    "a tensor with an empty name");
    const std::string e = R"({"dtype":"F32","shape":[0],"data_offsets":[0,0]})";
    EXPECT_CONTAINS(parse_error("{\"a\":" + e + ",\"a\":" + e + "}", 0),
                    "tensor 'a' appears twice");
    EXPECT_CONTAINS(parse_error(R"({"__metadata__":{"k":1}})", 0),
                    "__metadata__ 'k' must be a string");
    EXPECT_CONTAINS(parse_error(R"({"__metadata__":[]})", 0), "__metadata__ must be an object");
    // Deep nesting is refused or parsed, never a stack overflow.
    const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
    EXPECT_CONTAINS(parse_error(deep, 0), "tensor 'a': expected an object");
    EXPECT_CONTAINS(parse_error("{\"a\":" + std::string(100000, '['), 0), "not valid JSON");
}

// ---- the model's weights ------------------------------------------------------------------------

std::vector<float> as_floats(const SafetensorsTensor& t) {
    std::vector<float> v(t.bytes.size() / 4);
    std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
    return v;
}

TEST(SafetensorsModel, LeNet5InPyTorchLayouts) {
    const minicnn::Sequential m = minicnn::lenet5(3);
    const Safetensors st = minicnn::model_weights(m);
    EXPECT_EQ(st.metadata, (std::vector<std::pair<std::string, std::string>>{{"format", "pt"}}));
    std::vector<std::string> names;
    for (const SafetensorsTensor& t : st.tensors) {
        names.push_back(t.name);
        EXPECT_EQ(t.dtype, "F32");
    }
    EXPECT_EQ(names, (std::vector<std::string>{"conv2d.weight", "conv2d.bias", "conv2d_1.weight",
                                               "conv2d_1.bias", "dense.weight", "dense.bias",
                                               "dense_1.weight", "dense_1.bias", "dense_2.weight",
                                               "dense_2.bias"}));
    const std::vector<float>& p = m.params();
    // conv2d_1: HWIO (5, 5, 6, 16) at offset param_offset(2) -> OIHW (16, 6, 5, 5).
    const SafetensorsTensor& c = *st.find("conv2d_1.weight");
    EXPECT_EQ(c.shape, (minicnn::Shape{16, 6, 5, 5}));
    const std::vector<float> cw = as_floats(c);
    const std::int64_t c0 = m.param_offset(2);
    for (int o : {0, 7, 15})
        for (int ci : {0, 5})
            for (int y : {0, 2, 4})
                for (int x : {1, 4})
                    EXPECT_EQ(cw[((o * 6 + ci) * 5 + y) * 5 + x],
                              p[c0 + ((y * 5 + x) * 6 + ci) * 16 + o]);
    // dense after the Flatten of (5, 5, 16): (400, 120) -> (120, 400), columns in (c, h, w) order.
    const SafetensorsTensor& d = *st.find("dense.weight");
    EXPECT_EQ(d.shape, (minicnn::Shape{120, 400}));
    const std::vector<float> dw = as_floats(d);
    const std::int64_t d0 = m.param_offset(5);
    for (int o : {0, 60, 119})
        for (int ch : {0, 9, 15})
            for (int y : {0, 4})
                for (int x : {0, 3})
                    EXPECT_EQ(dw[o * 400 + (ch * 5 + y) * 5 + x],
                              p[d0 + ((y * 5 + x) * 16 + ch) * 120 + o]);
    // dense_1: a plain transpose (120, 84) -> (84, 120); biases as they are.
    const std::vector<float> d1 = as_floats(*st.find("dense_1.weight"));
    const std::int64_t d10 = m.param_offset(6);
    for (int o : {0, 83})
        for (int i : {0, 119}) EXPECT_EQ(d1[o * 120 + i], p[d10 + i * 84 + o]);
    const std::vector<float> b = as_floats(*st.find("dense_1.bias"));
    EXPECT_TRUE(std::equal(b.begin(), b.end(), p.begin() + d10 + 120 * 84));
}

Safetensors round_trip(const Safetensors& st) {
    return parse(minicnn::serialize_safetensors(st));
}

TEST(SafetensorsModel, WeightsReadBackBitForBit) {
    minicnn::Sequential a = minicnn::lenet5(1);
    for (std::size_t i = 0; i < a.params().size(); ++i) a.params()[i] += 1e-3f * float(i % 97);
    minicnn::Sequential b = minicnn::lenet5(2);
    ASSERT_NE(a.params(), b.params());
    minicnn::set_model_weights(b, round_trip(minicnn::model_weights(a)), "t");
    EXPECT_EQ(a.params(), b.params());
}

// A Flatten followed by an activation, then a Dense: still the (c, h, w) order; a Dense after a
// Dense or a one-dimensional input: no reordering.
TEST(SafetensorsModel, ReorderingFollowsTheFlattenThroughActivations) {
    minicnn::Sequential m({4, 3, 2}, "m");
    m.avgpool2d({2, 1}).flatten().activation(minicnn::Activation::tanh).dense(5).dense(3);
    m.init_params(4);
    const Safetensors st = minicnn::model_weights(m);
    const std::vector<float> w = as_floats(*st.find("dense.weight"));
    ASSERT_EQ(st.find("dense.weight")->shape, (minicnn::Shape{5, 12}));
    const std::int64_t d0 = m.param_offset(3);
    for (int o = 0; o < 5; ++o)
        for (int ch = 0; ch < 2; ++ch)
            for (int y = 0; y < 2; ++y)
                for (int x = 0; x < 3; ++x)
                    EXPECT_EQ(w[o * 12 + (ch * 2 + y) * 3 + x],
                              m.params()[d0 + ((y * 3 + x) * 2 + ch) * 5 + o]);

    minicnn::Sequential flat({6}, "flat");
    flat.dense(4).dense(2);
    flat.init_params(5);
    const std::vector<float> f = as_floats(*minicnn::model_weights(flat).find("dense.weight"));
    for (int o = 0; o < 4; ++o)
        for (int i = 0; i < 6; ++i) EXPECT_EQ(f[o * 6 + i], flat.params()[i * 4 + o]);
}

TEST(SafetensorsModel, BadWeightsNameTheTensorAndChangeNothing) {
    minicnn::Sequential m = minicnn::lenet5(1);
    const std::vector<float> before = m.params();
    const Safetensors good = minicnn::model_weights(minicnn::lenet5(2));
    auto error_with = [&](auto edit) {
        Safetensors st = good;
        edit(st);
        const std::string msg = error_of([&] { minicnn::set_model_weights(m, st, "w.st"); });
        EXPECT_EQ(m.params(), before);
        return msg;
    };
    EXPECT_CONTAINS(error_with([](Safetensors& st) { st.tensors.erase(st.tensors.begin() + 5); }),
                    "safetensors file 'w.st': tensor 'dense.bias' is missing (layer dense, Dense)");
    EXPECT_CONTAINS(error_with([](Safetensors& st) { st.tensors[0].name = "conv1.weight"; }),
                    "unknown tensor 'conv1.weight': the model 'lenet5' has conv2d.weight, "
                    "conv2d.bias, conv2d_1.weight");
    EXPECT_CONTAINS(error_with([](Safetensors& st) {
                        st.tensors[2] = tensor("conv2d_1.weight", "F64", {16, 6, 5, 5}, 8);
                    }),
                    "tensor 'conv2d_1.weight' has dtype F64, expected F32");
    EXPECT_CONTAINS(error_with([](Safetensors& st) {
                        st.tensors[4] = tensor("dense.weight", "F32", {400, 120}, 4);
                    }),
                    "tensor 'dense.weight' has shape (400, 120), expected (120, 400)");
    EXPECT_CONTAINS(error_with([](Safetensors& st) { st.tensors[1].bytes.resize(8); }),
                    "tensor 'conv2d.bias' holds 8 bytes, its shape needs 24");
}

class SafetensorsFile : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ = (std::filesystem::temp_directory_path() / "minicnn-st-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    std::string dir_;
};

TEST_F(SafetensorsFile, SaveAndLoad) {
    const std::string p = dir_ + "/w.safetensors";
    const minicnn::Sequential a = minicnn::lenet5(7);
    minicnn::save_weights(a, p);
    minicnn::Sequential b = minicnn::lenet5(8);
    minicnn::load_weights(b, p);
    EXPECT_EQ(a.params(), b.params());
    EXPECT_EQ(std::filesystem::file_size(p),
              minicnn::serialize_safetensors(minicnn::model_weights(a)).size());

    EXPECT_CONTAINS(error_of([&] { minicnn::load_weights(b, dir_ + "/none.safetensors"); }),
                    "safetensors file '" + dir_ + "/none.safetensors' not found");
    EXPECT_CONTAINS(error_of([&] { minicnn::load_weights(b, dir_); }), "is not a regular file");
    // A file cut short names itself.
    std::filesystem::resize_file(p, 1000);
    EXPECT_CONTAINS(error_of([&] { minicnn::load_weights(b, p); }), "safetensors file '" + p + "'");
    EXPECT_EQ(a.params(), b.params());
}

TEST_F(SafetensorsFile, FailedWriteLeavesThePreviousFile) {
    const std::string p = dir_ + "/w.safetensors";
    minicnn::save_weights(minicnn::lenet5(1), p);
    const auto before = std::filesystem::file_size(p);
    // The temporary file cannot be created: a directory is in the way.
    const std::string tmp = p + ".tmp." + std::to_string(static_cast<long>(::getpid()));
    std::filesystem::create_directory(tmp);
    const std::string msg = error_of([&] { minicnn::save_weights(minicnn::lenet5(2), p); });
    EXPECT_CONTAINS(msg, "save_weights: cannot write '" + p + "'");
    EXPECT_CONTAINS(msg, "the previous file, if any, is unchanged");
    minicnn::Sequential m = minicnn::lenet5(3);
    minicnn::load_weights(m, p);
    EXPECT_EQ(m.params(), minicnn::lenet5(1).params());
    EXPECT_EQ(std::filesystem::file_size(p), before);
}

}  // namespace
