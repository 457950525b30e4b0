// host/torch_layout.cpp — the PyTorch layouts of a model's parameters (host/torch_layout.h), and
// the model's weights as safetensors tensors and files (minicnn/export.h).
#include "torch_layout.h"

#include <cstring>
#include <set>

#include "file_io.h"
#include "minicnn/error.h"
#include "minicnn/export.h"

namespace minicnn {

// ---- PyTorch layouts ----------------------------------------------------------------------------

bool is_inference_identity(const Layer& layer) {
    return std::string(layer.type()) == "Dropout";
}

std::vector<TorchParam> torch_params(const Sequential& model) {
    std::vector<TorchParam> out;
    Shape flattened;  // (h, w, c) while the running output is a Flatten of an image
    for (std::size_t i = 0; i < model.size(); ++i) {
        const Layer& l = model.layer(i);
        const LayerOp op = l.op();
        const std::int64_t base = model.param_offset(i);
        if (op.kind == LayerOp::Kind::conv2d) {
            const ConvGeom& g = op.conv;
            TorchParam w{i, false, l.name + ".weight", {g.k, g.c, g.kh, g.kw}, {}};
            w.index.reserve(std::size_t(g.weight_numel()));
            for (std::int64_t o = 0; o < g.k; ++o)
                for (std::int64_t ci = 0; ci < g.c; ++ci)
                    for (std::int64_t y = 0; y < g.kh; ++y)
                        for (std::int64_t x = 0; x < g.kw; ++x)
                            w.index.push_back(base + ((y * g.kw + x) * g.c + ci) * g.k + o);
            TorchParam b{i, true, l.name + ".bias", {g.k}, {}};
            for (std::int64_t o = 0; o < g.k; ++o) b.index.push_back(base + g.weight_numel() + o);
            out.push_back(std::move(w));
            out.push_back(std::move(b));
        } else if (op.kind == LayerOp::Kind::dense) {
            // PyTorch's input t of a flattened (c, h, w) image is minicnn's row (y*w + x)*c + ch.
            std::vector<std::int64_t> row(std::size_t(op.n_in));
            for (std::int64_t t = 0; t < op.n_in; ++t) row[std::size_t(t)] = t;
            if (flattened.size() == 3 && shape_numel(flattened) == op.n_in) {
                const std::int64_t h = flattened[0], w = flattened[1], c = flattened[2];
                for (std::int64_t ch = 0; ch < c; ++ch)
                    for (std::int64_t y = 0; y < h; ++y)
                        for (std::int64_t x = 0; x < w; ++x)
                            row[std::size_t((ch * h + y) * w + x)] = (y * w + x) * c + ch;
            }
            TorchParam wt{i, false, l.name + ".weight", {op.n_out, op.n_in}, {}};
            wt.index.reserve(std::size_t(op.n_in * op.n_out));
            for (std::int64_t o = 0; o < op.n_out; ++o)
                for (std::int64_t t = 0; t < op.n_in; ++t)
                    wt.index.push_back(base + row[std::size_t(t)] * op.n_out + o);
            TorchParam b{i, true, l.name + ".bias", {op.n_out}, {}};
            for (std::int64_t o = 0; o < op.n_out; ++o)
                b.index.push_back(base + op.n_in * op.n_out + o);
            out.push_back(std::move(wt));
            out.push_back(std::move(b));
        } else {
            MINICNN_REQUIRE(l.param_count() == 0, "export: layer '"
                                                      << l.name << "' (" << l.type()
                                                      << ") has parameters, and export knows the "
                                                         "layouts of Conv2D and Dense only");
        }
        // The running output is still the Flatten of an image through elementwise layers only.
        if (op.kind == LayerOp::Kind::reshape && l.input_shape().size() == 3) {
            flattened = l.input_shape();
        } else if (op.kind != LayerOp::Kind::activation && !is_inference_identity(l)) {
            flattened.clear();
        }
    }
    return out;
}

// ---- the model's weights ------------------------------------------------------------------------

Safetensors model_weights(const Sequential& model) {
    Safetensors st;
    st.metadata = {{"format", "pt"}};
    const std::vector<float>& p = model.params();
    for (const TorchParam& tp : torch_params(model)) {
        SafetensorsTensor t{tp.name, "F32", tp.shape, {}};
        t.bytes.resize(tp.index.size() * sizeof(float));
        float* dst = reinterpret_cast<float*>(t.bytes.data());
        for (std::size_t j = 0; j < tp.index.size(); ++j) dst[j] = p[std::size_t(tp.index[j])];
        st.tensors.push_back(std::move(t));
    }
    return st;
}

void set_model_weights(Sequential& model, const Safetensors& st, const std::string& name) {
    const std::string file = "safetensors file '" + name + "'";
    const std::vector<TorchParam> params = torch_params(model);
    std::set<std::string> expected;
    std::string list;
    for (const TorchParam& tp : params) {
        expected.insert(tp.name);
        list += (list.empty() ? "" : ", ") + tp.name;
    }
    for (const SafetensorsTensor& t : st.tensors) {
        MINICNN_REQUIRE(expected.count(t.name), file << ": unknown tensor '" << t.name
                                                     << "': the model '" << model.name() << "' has "
                                                     << list);
    }
    std::vector<float> next = model.params();
    for (const TorchParam& tp : params) {
        const SafetensorsTensor* t = st.find(tp.name);
        MINICNN_REQUIRE(t != nullptr, file << ": tensor '" << tp.name << "' is missing (layer "
                                           << model.layer(tp.layer).name << ", "
                                           << model.layer(tp.layer).type() << ")");
        MINICNN_REQUIRE(t->dtype == "F32", file << ": tensor '" << tp.name << "' has dtype "
                                                << t->dtype << ", expected F32");
        MINICNN_REQUIRE(t->shape == tp.shape, file << ": tensor '" << tp.name << "' has shape "
                                                   << shape_str(t->shape) << ", expected "
                                                   << shape_str(tp.shape));
        // A Safetensors built by hand (not parsed) may hold fewer bytes than its shape says.
        MINICNN_REQUIRE(t->bytes.size() == tp.index.size() * sizeof(float),
                        file << ": tensor '" << tp.name << "' holds " << t->bytes.size()
                             << " bytes, its shape needs " << tp.index.size() * sizeof(float));
        for (std::size_t j = 0; j < tp.index.size(); ++j) {
            float v;
            std::memcpy(&v, t->bytes.data() + j * sizeof v, sizeof v);
            next[std::size_t(tp.index[j])] = v;
        }
    }
    model.params() = std::move(next);
}

void save_weights(const Sequential& model, const std::string& path) {
    write_file_atomic(path, serialize_safetensors(model_weights(model)), "save_weights", "file");
}

void load_weights(Sequential& model, const std::string& path) {
    const std::vector<std::uint8_t> data = read_file(path, "safetensors file");
    set_model_weights(model, parse_safetensors(data.data(), data.size(), path), path);
}

}  // namespace minicnn
