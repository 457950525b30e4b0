// tests/test_export.cpp — the ONNX writer of minicnn/export.h, read back by an independent
// protobuf decoder written here: the model header (IR version 8, opset 17, producer), LeNet-5's
// graph node by node (the NHWC -> NCHW transpose, 'same' and 'valid' pads, pool windows, Flatten,
// Gemm with transB, the softmax), the initialisers (the safetensors tensors, byte for byte), the
// free batch dimension; a model that ends on an image transposes back to NHWC; a layer export does
// not know is refused by name; export_model picks the format from the extension and writes
// nothing for another. onnx.checker and onnxruntime check the same files in
// python/tests/test_export.py.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "minicnn/export.h"
#include "minicnn/model.h"
#include "test_util.h"

namespace {

using minicnn::test::error_of;
using Bytes = std::vector<std::uint8_t>;

// ---- a protobuf decoder (wire format only) -------------------------------------------------------

struct Field {
    int number = 0;
    int wire = 0;
    std::uint64_t value = 0;  // varint or fixed32
    Bytes bytes;              // length-delimited
    std::string str() const { return std::string(bytes.begin(), bytes.end()); }
};

using Message = std::multimap<int, Field>;

std::uint64_t read_varint(const Bytes& b, std::size_t& pos) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (pos >= b.size()) throw std::runtime_error("varint past the end");
        const std::uint8_t byte = b[pos++];
        v |= std::uint64_t(byte & 0x7f) << shift;
        if (!(byte & 0x80)) return v;
    }
    throw std::runtime_error("varint too long");
}

Message decode(const Bytes& b) {
    Message m;
    std::size_t pos = 0;
    while (pos < b.size()) {
        const std::uint64_t key = read_varint(b, pos);
        Field f;
        f.number = int(key >> 3);
        f.wire = int(key & 7);
        if (f.wire == 0) {
            f.value = read_varint(b, pos);
        } else if (f.wire == 5) {
            if (pos + 4 > b.size()) throw std::runtime_error("fixed32 past the end");
            std::uint32_t v;
            std::memcpy(&v, b.data() + pos, 4);
            f.value = v;
            pos += 4;
        } else if (f.wire == 2) {
            const std::uint64_t n = read_varint(b, pos);
            if (n > b.size() - pos) throw std::runtime_error("bytes past the end");
            f.bytes.assign(b.begin() + std::ptrdiff_t(pos), b.begin() + std::ptrdiff_t(pos + n));
            pos += n;
        } else {
            throw std::runtime_error("unexpected wire type " + std::to_string(f.wire));
        }
        m.emplace(f.number, std::move(f));
    }
    return m;
}

std::vector<Field> all(const Message& m, int number) {
    std::vector<Field> out;
    auto [a, b] = m.equal_range(number);
    for (auto it = a; it != b; ++it) out.push_back(it->second);
    return out;
}
const Field& one(const Message& m, int number) {
    EXPECT_EQ(m.count(number), 1u) << "field " << number;
    return m.find(number)->second;
}

struct Node {
    std::string op, name;
    std::vector<std::string> inputs, outputs;
    std::map<std::string, std::vector<std::int64_t>> ints;  // INT and INTS attributes
};

std::vector<Node> nodes_of(const Message& graph) {
    std::vector<Node> out;
    for (const Field& f : all(graph, 1)) {
        const Message n = decode(f.bytes);
        Node node;
        for (const Field& s : all(n, 1)) node.inputs.push_back(s.str());
        for (const Field& s : all(n, 2)) node.outputs.push_back(s.str());
        node.name = one(n, 3).str();
        node.op = one(n, 4).str();
        for (const Field& a : all(n, 5)) {
            const Message attr = decode(a.bytes);
            std::vector<std::int64_t>& v = node.ints[one(attr, 1).str()];
            for (const Field& i : all(attr, 3)) v.push_back(std::int64_t(i.value));
            for (const Field& i : all(attr, 8)) v.push_back(std::int64_t(i.value));
        }
        out.push_back(std::move(node));
    }
    return out;
}

// A ValueInfoProto's name and dims ("batch" as -1).
std::pair<std::string, std::vector<std::int64_t>> value_info(const Bytes& b) {
    const Message vi = decode(b);
    const Message tensor = decode(one(decode(one(vi, 2).bytes), 1).bytes);
    EXPECT_EQ(one(tensor, 1).value, 1u);  // FLOAT
    std::vector<std::int64_t> dims;
    for (const Field& d : all(decode(one(tensor, 2).bytes), 1)) {
        const Message dim = decode(d.bytes);
        if (dim.count(2)) {
            EXPECT_EQ(one(dim, 2).str(), "batch");
            dims.push_back(-1);
        } else {
            dims.push_back(std::int64_t(one(dim, 1).value));
        }
    }
    return {one(vi, 1).str(), dims};
}

// ---- tests --------------------------------------------------------------------------------------

TEST(OnnxExport, LeNet5Graph) {
    const minicnn::Sequential m = minicnn::lenet5(5);
    const Message model = decode(minicnn::model_to_onnx(m));
    EXPECT_EQ(one(model, 1).value, 8u);  // ir_version
    EXPECT_EQ(one(model, 2).str(), "minicnn");
    const Message opset = decode(one(model, 8).bytes);
    EXPECT_EQ(one(opset, 1).str(), "");
    EXPECT_EQ(one(opset, 2).value, 17u);
    const Message graph = decode(one(model, 7).bytes);
    EXPECT_EQ(one(graph, 2).str(), "lenet5");

    const std::vector<Node> nodes = nodes_of(graph);
    std::vector<std::string> ops;
    for (const Node& n : nodes) ops.push_back(n.op);
    EXPECT_EQ(ops, (std::vector<std::string>{"Transpose", "Conv", "Relu", "MaxPool", "Conv", "Relu",
                                             "MaxPool", "Flatten", "Gemm", "Relu", "Gemm", "Relu",
                                             "Gemm", "Softmax"}));
    // Each node reads the one before it; the first the input, the last writes the output.
    ASSERT_EQ(nodes.size(), 14u);
    EXPECT_EQ(nodes[0].inputs, std::vector<std::string>{"input"});
    for (std::size_t i = 1; i < nodes.size(); ++i)
        EXPECT_EQ(nodes[i].inputs.at(0), nodes[i - 1].outputs.at(0)) << nodes[i].name;
    EXPECT_EQ(nodes.back().outputs, std::vector<std::string>{"output"});
    EXPECT_EQ(nodes[0].ints.at("perm"), (std::vector<std::int64_t>{0, 3, 1, 2}));
    EXPECT_EQ(nodes[1].inputs,
              (std::vector<std::string>{"input_nchw", "conv2d.weight", "conv2d.bias"}));
    EXPECT_EQ(nodes[1].ints.at("pads"), (std::vector<std::int64_t>{2, 2, 2, 2}));  // 'same', 5x5
    EXPECT_EQ(nodes[1].ints.at("kernel_shape"), (std::vector<std::int64_t>{5, 5}));
    EXPECT_EQ(nodes[1].ints.at("strides"), (std::vector<std::int64_t>{1, 1}));
    EXPECT_EQ(nodes[4].ints.at("pads"), (std::vector<std::int64_t>{0, 0, 0, 0}));  // 'valid'
    EXPECT_EQ(nodes[3].ints.at("kernel_shape"), (std::vector<std::int64_t>{2, 2}));
    EXPECT_EQ(nodes[3].ints.at("strides"), (std::vector<std::int64_t>{2, 2}));
    EXPECT_EQ(nodes[7].ints.at("axis"), std::vector<std::int64_t>{1});
    EXPECT_EQ(nodes[8].ints.at("transB"), std::vector<std::int64_t>{1});
    EXPECT_EQ(nodes[13].ints.at("axis"), std::vector<std::int64_t>{-1});

    // The initialisers are the safetensors tensors: names, shapes and bytes.
    const minicnn::Safetensors st = minicnn::model_weights(m);
    const std::vector<Field> inits = all(graph, 5);
    ASSERT_EQ(inits.size(), st.tensors.size());
    for (std::size_t i = 0; i < inits.size(); ++i) {
        const Message t = decode(inits[i].bytes);
        const minicnn::SafetensorsTensor& ref = st.tensors[i];
        EXPECT_EQ(one(t, 8).str(), ref.name);
        EXPECT_EQ(one(t, 2).value, 1u);  // FLOAT
        minicnn::Shape dims;
        for (const Field& d : all(t, 1)) dims.push_back(std::int64_t(d.value));
        EXPECT_EQ(dims, ref.shape) << ref.name;
        EXPECT_EQ(one(t, 9).bytes, ref.bytes) << ref.name;
    }
    const auto in = value_info(one(graph, 11).bytes);
    EXPECT_EQ(in.first, "input");
    EXPECT_EQ(in.second, (std::vector<std::int64_t>{-1, 28, 28, 1}));
    const auto out = value_info(one(graph, 12).bytes);
    EXPECT_EQ(out.first, "output");
    EXPECT_EQ(out.second, (std::vector<std::int64_t>{-1, 10}));
}

// A model that ends on an image: softmax over the channels (axis 1 of NCHW), then back to NHWC;
// explicit padding and strides as given; average pooling.
TEST(OnnxExport, ImageOutputExplicitPaddingAndAveragePooling) {
    minicnn::Sequential m({9, 7, 2}, "img");
    m.conv2d(3, {3, 2}, minicnn::Padding::explicit_pad(1, 2), minicnn::Activation::softmax, {2, 1})
        .avgpool2d({2, 2}, {1, 2});
    const Message graph = decode(one(decode(minicnn::model_to_onnx(m)), 7).bytes);
    const std::vector<Node> nodes = nodes_of(graph);
    std::vector<std::string> ops;
    for (const Node& n : nodes) ops.push_back(n.op);
    EXPECT_EQ(ops, (std::vector<std::string>{"Transpose", "Conv", "Softmax", "AveragePool",
                                             "Transpose"}));
    EXPECT_EQ(nodes[1].ints.at("pads"), (std::vector<std::int64_t>{1, 2, 1, 2}));
    EXPECT_EQ(nodes[1].ints.at("strides"), (std::vector<std::int64_t>{2, 1}));
    EXPECT_EQ(nodes[2].ints.at("axis"), std::vector<std::int64_t>{1});
    EXPECT_EQ(nodes[3].ints.at("strides"), (std::vector<std::int64_t>{1, 2}));
    EXPECT_EQ(nodes[4].ints.at("perm"), (std::vector<std::int64_t>{0, 2, 3, 1}));
    EXPECT_EQ(nodes[4].outputs, std::vector<std::string>{"output"});
    const minicnn::Shape s = m.output_shape();
    EXPECT_EQ(value_info(one(graph, 12).bytes).second,
              (std::vector<std::int64_t>{-1, s[0], s[1], s[2]}));
}

// A layer with parameters that export does not know (a stand-in for a future layer type).
class Scale final : public minicnn::Layer {
public:
    const char* type() const override { return "Scale"; }
    std::string spec() const override { return "Scale"; }
    std::vector<minicnn::ParamInfo> param_info() const override { return {{"kernel", {1}, 1}}; }
    minicnn::LayerContext forward(minicnn::Engine&, const float*, float*, std::int32_t*,
                                  std::int64_t) const override {
        return {};
    }
    void backward(minicnn::Engine&, const minicnn::LayerContext&, float*, bool,
                  float*) const override {}

protected:
    minicnn::Shape do_build(const minicnn::Shape& in) override { return in; }
};

class Shift final : public minicnn::Layer {  // no parameters, not known to export either
public:
    const char* type() const override { return "Shift"; }
    std::string spec() const override { return "Shift"; }
    minicnn::LayerContext forward(minicnn::Engine&, const float*, float*, std::int32_t*,
                                  std::int64_t) const override {
        return {};
    }
    void backward(minicnn::Engine&, const minicnn::LayerContext&, float*, bool,
                  float*) const override {}

protected:
    minicnn::Shape do_build(const minicnn::Shape& in) override { return in; }
};

TEST(OnnxExport, UnknownLayersAreRefusedByName) {
    minicnn::Sequential a({4}, "a");
    a.dense(3).add(std::make_unique<Scale>());
    EXPECT_CONTAINS(error_of([&] { minicnn::model_to_onnx(a); }),
                    "layer 'activation' (Scale) has parameters, and export knows the layouts of "
                    "Conv2D and Dense only");
    EXPECT_CONTAINS(error_of([&] { minicnn::model_weights(a); }), "(Scale) has parameters");
    minicnn::Sequential b({4}, "b");
    b.dense(3).add(std::make_unique<Shift>());
    EXPECT_CONTAINS(error_of([&] { minicnn::model_to_onnx(b); }),
                    "export to ONNX: layer 'activation' (Shift) is not supported");
}

TEST(OnnxExport, ExportPicksTheFormatFromTheExtension) {
    std::string templ = (std::filesystem::temp_directory_path() / "minicnn-ex-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    const std::string dir = templ;
    const minicnn::Sequential m = minicnn::lenet5(2);
    minicnn::export_model(m, dir + "/m.onnx");
    minicnn::export_model(m, dir + "/m.safetensors");
    EXPECT_EQ(std::filesystem::file_size(dir + "/m.onnx"), minicnn::model_to_onnx(m).size());
    minicnn::Sequential back = minicnn::lenet5(9);
    minicnn::load_weights(back, dir + "/m.safetensors");
    EXPECT_EQ(back.params(), m.params());
    EXPECT_EQ(minicnn::export_format("a/b.onnx"), minicnn::ExportFormat::onnx);
    EXPECT_CONTAINS(error_of([&] { minicnn::export_model(m, dir + "/m.pt"); }),
                    "has the extension '.pt'; expected .safetensors (the weights) or .onnx");
    EXPECT_CONTAINS(error_of([&] { minicnn::export_format("dir.onnx/model"); }),
                    "has the extension none");
    EXPECT_CONTAINS(error_of([&] { minicnn::export_format(".onnx"); }), "extension '.onnx'");
    EXPECT_FALSE(std::filesystem::exists(dir + "/m.pt"));
    std::filesystem::remove_all(dir);
}

}  // namespace
