// host/onnx.cpp — a model as ONNX (minicnn/export.h): the graph of one Sequential, encoded by a
// small protobuf writer, and export_model, which picks the format from the file's extension.
//
// Why a writer of our own rather than libprotobuf with onnx.proto: the library only writes, and
// only six messages (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
// ValueInfoProto with its TypeProto / TensorShapeProto) whose wire format is four constructs
// (varint, 32-bit float, length-delimited bytes, nested message). libprotobuf would add a
// library, protoc, a vendored onnx.proto and generated code to every build for about a hundred
// lines; onnx.checker and onnxruntime check what this file writes (python/tests/test_export.py).
// Field numbers are onnx.proto3's, written beside each call.
#include <cstring>
#include <string>
#include <vector>

#include "file_io.h"
#include "minicnn/error.h"
#include "minicnn/export.h"
#include "minicnn/version.h"
#include "torch_layout.h"

namespace minicnn {
namespace {

// A protobuf message being written: fields appended in any order (protobuf allows it).
class Proto {
public:
    Proto& varint_field(int field, std::uint64_t v) {
        key(field, 0);
        varint(v);
        return *this;
    }
    Proto& int_field(int field, std::int64_t v) { return varint_field(field, std::uint64_t(v)); }
    Proto& float_field(int field, float v) {
        key(field, 5);
        std::uint8_t b[4];
        std::memcpy(b, &v, 4);  // little-endian host (host/safetensors.cpp checks)
        buf_.insert(buf_.end(), b, b + 4);
        return *this;
    }
    Proto& bytes_field(int field, const void* p, std::size_t n) {
        key(field, 2);
        varint(n);
        const auto* b = static_cast<const std::uint8_t*>(p);
        buf_.insert(buf_.end(), b, b + n);
        return *this;
    }
    Proto& string_field(int field, const std::string& s) {
        return bytes_field(field, s.data(), s.size());
    }
    Proto& message_field(int field, const Proto& m) {
        return bytes_field(field, m.buf_.data(), m.buf_.size());
    }
    const std::vector<std::uint8_t>& bytes() const { return buf_; }

private:
    void key(int field, int wire) { varint((std::uint64_t(field) << 3) | std::uint64_t(wire)); }
    void varint(std::uint64_t v) {
        while (v >= 0x80) {
            buf_.push_back(std::uint8_t(v | 0x80));
            v >>= 7;
        }
        buf_.push_back(std::uint8_t(v));
    }
    std::vector<std::uint8_t> buf_;
};

// onnx.proto3 enums.
constexpr int kFloat = 1;               // TensorProto.DataType.FLOAT
constexpr int kAttrInt = 2;             // AttributeProto.AttributeType.INT
constexpr int kAttrInts = 7;            // AttributeProto.AttributeType.INTS
constexpr std::int64_t kIrVersion = 8;  // the IR version of opset 17 (ONNX 1.12)
constexpr std::int64_t kOpset = 17;

Proto attr_int(const std::string& name, std::int64_t v) {
    Proto a;
    a.string_field(1, name).int_field(3, v).int_field(20, kAttrInt);  // name, i, type
    return a;
}
Proto attr_ints(const std::string& name, const std::vector<std::int64_t>& v) {
    Proto a;
    a.string_field(1, name);
    for (std::int64_t x : v) a.int_field(8, x);  // ints (unpacked; parsers take both forms)
    a.int_field(20, kAttrInts);
    return a;
}

struct Node {
    std::string op, name;
    std::vector<std::string> inputs, outputs;
    std::vector<Proto> attrs;
};

Proto encode(const Node& n) {
    Proto p;
    for (const std::string& s : n.inputs) p.string_field(1, s);
    for (const std::string& s : n.outputs) p.string_field(2, s);
    p.string_field(3, n.name).string_field(4, n.op);
    for (const Proto& a : n.attrs) p.message_field(5, a);
    return p;
}

// ValueInfoProto of a float tensor whose first dimension is the free "batch".
Proto value_info(const std::string& name, const Shape& sample) {
    Proto shape;
    shape.message_field(1, Proto().string_field(2, "batch"));  // dim { dim_param }
    for (std::int64_t d : sample) shape.message_field(1, Proto().int_field(1, d));  // dim_value
    Proto tensor;
    tensor.int_field(1, kFloat).message_field(2, shape);  // elem_type, shape
    Proto type;
    type.message_field(1, tensor);  // TypeProto.tensor_type
    Proto vi;
    vi.string_field(1, name).message_field(2, type);
    return vi;
}

const char* onnx_activation(Activation a) {
    switch (a) {
        case Activation::relu:
            return "Relu";
        case Activation::tanh:
            return "Tanh";
        case Activation::sigmoid:
            return "Sigmoid";
        case Activation::softmax:
            return "Softmax";
        case Activation::linear:
            break;
    }
    return nullptr;
}

// Builds the node list, the running tensor's name and whether it is an NCHW image.
struct GraphBuilder {
    std::vector<Node> nodes;
    std::string cur = "input";
    bool nchw = false;

    void add(const std::string& op, const std::string& name, std::vector<std::string> extra_inputs,
             std::vector<Proto> attrs = {}) {
        Node n{op, name, {cur}, {name}, std::move(attrs)};
        n.inputs.insert(n.inputs.end(), extra_inputs.begin(), extra_inputs.end());
        nodes.push_back(std::move(n));
        cur = name;
    }
    void activation(Activation a, const std::string& name) {
        const char* op = onnx_activation(a);
        if (op == nullptr) return;
        std::vector<Proto> attrs;
        // minicnn's softmax runs over the last axis: the channels, axis 1 of an NCHW image.
        if (a == Activation::softmax) attrs.push_back(attr_int("axis", nchw ? 1 : -1));
        add(op, name, {}, std::move(attrs));
    }
};

}  // namespace

std::vector<std::uint8_t> model_to_onnx(const Sequential& model) {
    const std::vector<TorchParam> params = torch_params(model);
    const std::vector<float>& p = model.params();
    Proto graph;
    for (const TorchParam& tp : params) {  // the initialisers, PyTorch's layouts
        Proto t;
        for (std::int64_t d : tp.shape) t.int_field(1, d);  // dims
        t.int_field(2, kFloat).string_field(8, tp.name);    // data_type, name
        std::vector<float> v(tp.index.size());
        for (std::size_t j = 0; j < v.size(); ++j) v[j] = p[std::size_t(tp.index[j])];
        t.bytes_field(9, v.data(), v.size() * sizeof(float));  // raw_data
        graph.message_field(5, t);
    }

    GraphBuilder g;
    if (model.input_shape().size() == 3) {
        g.add("Transpose", "input_nchw", {}, {attr_ints("perm", {0, 3, 1, 2})});
        g.nchw = true;
    }
    for (std::size_t i = 0; i < model.size(); ++i) {
        const Layer& l = model.layer(i);
        const LayerOp op = l.op();
        const std::string w = l.name + ".weight", b = l.name + ".bias";
        switch (op.kind) {
            case LayerOp::Kind::conv2d: {
                const ConvGeom& c = op.conv;
                g.add("Conv", l.name, {w, b},
                      {attr_ints("kernel_shape", {c.kh, c.kw}), attr_ints("strides", {c.sh, c.sw}),
                       attr_ints("pads", {c.ph, c.pw, c.ph, c.pw}), attr_ints("dilations", {1, 1}),
                       attr_int("group", 1)});
                g.activation(op.act, l.name + "_" + activation_name(op.act));
                break;
            }
            case LayerOp::Kind::max_pool:
            case LayerOp::Kind::avg_pool: {
                const PoolGeom& q = op.pool;
                g.add(op.kind == LayerOp::Kind::max_pool ? "MaxPool" : "AveragePool", l.name, {},
                      {attr_ints("kernel_shape", {q.kh, q.kw}), attr_ints("strides", {q.sh, q.sw}),
                       attr_ints("pads", {0, 0, 0, 0})});
                break;
            }
            case LayerOp::Kind::reshape:
                // NCHW flattens in (c, h, w) order: the Dense weights' (PyTorch's) order.
                if (l.input_shape().size() > 1) g.add("Flatten", l.name, {}, {attr_int("axis", 1)});
                g.nchw = false;
                break;
            case LayerOp::Kind::dense:
                g.add("Gemm", l.name, {w, b}, {attr_int("transB", 1)});
                g.activation(op.act, l.name + "_" + activation_name(op.act));
                break;
            case LayerOp::Kind::activation:
                g.activation(op.act, l.name);
                break;
            default:  // Kind::other, and any kind added after this writer
                MINICNN_REQUIRE(is_inference_identity(l), "export to ONNX: layer '"
                                                              << l.name << "' (" << l.type()
                                                              << ") is not supported");
                break;  // the identity at inference
        }
    }
    if (g.nchw) g.add("Transpose", "output_nhwc", {}, {attr_ints("perm", {0, 2, 3, 1})});
    if (g.nodes.empty()) g.add("Identity", "output", {});
    g.nodes.back().outputs.back() = "output";

    for (const Node& n : g.nodes) graph.message_field(1, encode(n));
    graph.string_field(2, model.name());
    graph.message_field(11, value_info("input", model.input_shape()));
    graph.message_field(12, value_info("output", model.output_shape()));

    Proto opset;
    opset.string_field(1, "").int_field(2, kOpset);  // domain, version
    Proto m;
    m.int_field(1, kIrVersion)
        .string_field(2, "minicnn")
        .string_field(3, version())
        .message_field(7, graph)
        .message_field(8, opset);
    return m.bytes();
}

void save_onnx(const Sequential& model, const std::string& path) {
    write_file_atomic(path, model_to_onnx(model), "export", "file");
}

ExportFormat export_format(const std::string& path) {
    const auto ends_with = [&](const std::string& ext) {
        return path.size() > ext.size() &&
               path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
    };
    if (ends_with(".safetensors")) return ExportFormat::safetensors;
    if (ends_with(".onnx")) return ExportFormat::onnx;
    const std::size_t dot = path.find_last_of("./");
    const std::string ext =
        dot == std::string::npos || path[dot] == '/' ? "none" : "'" + path.substr(dot) + "'";
    MINICNN_REQUIRE(false, "export: '" << path << "' has the extension " << ext
                                       << "; expected .safetensors (the weights) or .onnx (the "
                                          "model)");
    return ExportFormat::onnx;
}

void export_model(const Sequential& model, const std::string& path) {
    if (export_format(path) == ExportFormat::safetensors) {
        save_weights(model, path);
    } else {
        save_onnx(model, path);
    }
}

}  // namespace minicnn
