// host/layers.cpp — the layers of minicnn/layers.h: shape rules, parameter layout, and forward /
// backward as sequences of Engine operations (the engine decides where and how they run).
//
// Parameter layout inside a layer's slice of the arena: kernel first, then bias.
//   Conv2D: kernel (kh, kw, c, filters) HWIO, bias (filters)
//   Dense : kernel (n_in, units),            bias (units)
// Backward of a layer with an activation first turns dout into dz in place (dz = act'(out) * dout),
// unless the caller passes dz already (the fused softmax + cross-entropy gradient).
#include "minicnn/layers.h"

#include <cmath>
#include <sstream>

#include "float_str.h"
#include "minicnn/error.h"

namespace minicnn {

namespace {

std::string window_str(int h, int w) {
    return std::to_string(h) + "x" + std::to_string(w);
}

std::string padding_spec(const Padding& p) {
    if (p.kind == Padding::Kind::same) return "same";
    if (p.kind == Padding::Kind::valid) return "valid";
    return window_str(p.h, p.w);
}

// "5x5" -> (5, 5); "5" -> (5, 5).
std::pair<int, int> parse_pair(const std::string& s, const std::string& what) {
    const auto x = s.find('x');
    try {
        std::size_t used = 0;
        if (x == std::string::npos) {
            const int v = std::stoi(s, &used);
            MINICNN_REQUIRE(used == s.size(), "");
            return {v, v};
        }
        const int a = std::stoi(s.substr(0, x), &used);
        MINICNN_REQUIRE(used == x, "");
        const std::string rest = s.substr(x + 1);
        const int b = std::stoi(rest, &used);
        MINICNN_REQUIRE(used == rest.size(), "");
        return {a, b};
    } catch (const std::exception&) {
        throw ArgumentError("layer spec: " + what + " must look like 5x5 or 5, got '" + s + "'");
    }
}

}  // namespace

// ---- Layer --------------------------------------------------------------------------------------

void Layer::build(const Shape& input_shape) {
    for (std::int64_t d : input_shape) {
        MINICNN_REQUIRE(d > 0, type() << ": input shape " << shape_str(input_shape)
                                      << " has a dimension that is not positive");
    }
    output_shape_ = do_build(input_shape);
    input_shape_ = input_shape;
    built_ = true;
}

std::int64_t Layer::param_count() const {
    std::int64_t n = 0;
    for (const ParamInfo& p : param_info()) n += shape_numel(p.shape);
    return n;
}

void Layer::reserve(Engine&, std::int64_t) const {}

LayerContext Layer::forward_train(Engine& engine, const float* inp, float* out, std::int32_t* mask,
                                  std::int64_t n, const TrainingStep&, std::size_t) const {
    return forward(engine, inp, out, mask, n);
}

LayerOp Layer::op() const {
    return {};
}

std::unique_ptr<Layer> Layer::from_spec(const std::string& spec) {
    std::istringstream is(spec);
    std::string type;
    is >> type;
    std::string filters, kernel = "2x2", stride, padding = "valid", activation = "linear", units,
                         rate, tok;
    while (is >> tok) {
        const auto eq = tok.find('=');
        MINICNN_REQUIRE(eq != std::string::npos,
                        "layer spec: expected key=value, got '" << tok << "' in '" << spec << "'");
        const std::string k = tok.substr(0, eq), v = tok.substr(eq + 1);
        if (k == "filters")
            filters = v;
        else if (k == "kernel" || k == "pool")
            kernel = v;
        else if (k == "stride")
            stride = v;
        else if (k == "padding")
            padding = v;
        else if (k == "activation")
            activation = v;
        else if (k == "units")
            units = v;
        else if (k == "rate")
            rate = v;
        else
            throw ArgumentError("layer spec: unknown key '" + k + "' in '" + spec + "'");
    }
    auto to_int = [&](const std::string& v, const char* what) {
        try {
            std::size_t used = 0;
            const int x = std::stoi(v, &used);
            if (used == v.size()) return x;
        } catch (const std::exception&) {
        }
        throw ArgumentError(std::string("layer spec: ") + what + " must be an integer, got '" + v +
                            "' in '" + spec + "'");
    };
    const auto kp = parse_pair(kernel, "kernel");
    if (type == "Conv2D") {
        const auto sp = stride.empty() ? std::pair<int, int>{1, 1} : parse_pair(stride, "stride");
        Padding pad;
        if (padding == "same" || padding == "valid") {
            pad = Padding::parse(padding);
        } else {
            const auto pp = parse_pair(padding, "padding");
            pad = Padding::explicit_pad(pp.first, pp.second);
        }
        return std::make_unique<Conv2D>(to_int(filters, "filters"), Window{kp.first, kp.second},
                                        pad, Stride{sp.first, sp.second},
                                        parse_activation(activation));
    }
    if (type == "MaxPooling2D" || type == "AveragePooling2D") {
        const auto sp = stride.empty() ? kp : parse_pair(stride, "stride");
        return std::make_unique<Pool2D>(type == "MaxPooling2D" ? PoolMode::max : PoolMode::avg,
                                        Window{kp.first, kp.second}, Stride{sp.first, sp.second});
    }
    if (type == "Flatten") return std::make_unique<Flatten>();
    if (type == "Dense") {
        return std::make_unique<Dense>(to_int(units, "units"), parse_activation(activation));
    }
    if (type == "Activation")
        return std::make_unique<ActivationLayer>(parse_activation(activation));
    if (type == "Dropout") {
        try {
            std::size_t used = 0;
            const float r = std::stof(rate, &used);
            if (used == rate.size()) return std::make_unique<Dropout>(r);
        } catch (const std::logic_error&) {  // stof's invalid_argument / out_of_range
        }
        throw ArgumentError("layer spec: rate must be a number, got '" + rate + "' in '" + spec +
                            "'");
    }
    throw ArgumentError("layer spec: unknown layer type '" + type +
                        "' (expected Conv2D, MaxPooling2D, AveragePooling2D, Flatten, Dense, "
                        "Activation or Dropout)");
}

// ---- Conv2D -------------------------------------------------------------------------------------

Conv2D::Conv2D(int filters, Window kernel, Padding padding, Stride stride, Activation activation)
    : filters_(filters), kernel_(kernel), padding_(padding), stride_(stride), act_(activation) {
    MINICNN_REQUIRE(filters > 0, "Conv2D: filters must be positive, got " << filters);
    MINICNN_REQUIRE(kernel.h > 0 && kernel.w > 0,
                    "Conv2D: kernel must be positive, got " << kernel.h << "x" << kernel.w);
}

std::string Conv2D::spec() const {
    return std::string("Conv2D filters=") + std::to_string(filters_) +
           " kernel=" + window_str(kernel_.h, kernel_.w) +
           " stride=" + window_str(stride_.h, stride_.w) + " padding=" + padding_spec(padding_) +
           " activation=" + activation_name(act_);
}

Shape Conv2D::do_build(const Shape& in) {
    MINICNN_REQUIRE(in.size() == 3,
                    "Conv2D: expected a per-sample input (h, w, c), got " << shape_str(in));
    geom_ = conv_geometry({1, in[0], in[1], in[2]}, {kernel_.h, kernel_.w, in[2], filters_},
                          padding_, stride_, "Conv2D");
    return {geom_.oh, geom_.ow, geom_.k};
}

ConvGeom Conv2D::geometry(std::int64_t n) const {
    ConvGeom g = geom_;
    g.n = n;
    return g;
}

std::vector<ParamInfo> Conv2D::param_info() const {
    const std::int64_t c = input_shape().at(2);
    return {
        {"kernel", {kernel_.h, kernel_.w, c, filters_}, std::int64_t(kernel_.h) * kernel_.w * c},
        {"bias", {filters_}, 0}};
}

void Conv2D::reserve(Engine& engine, std::int64_t max_batch) const {
    engine.reserve_conv(geometry(max_batch));
}

LayerContext Conv2D::forward(Engine& engine, const float* inp, float* out, std::int32_t*,
                             std::int64_t n) const {
    const ConvGeom g = geometry(n);
    engine.conv2d_forward(out, inp, params_, params_ + g.weight_numel(), g, act_);
    return {inp, out, nullptr, n};
}

void Conv2D::backward(Engine& engine, const LayerContext& ctx, float* dout, bool dout_is_dz,
                      float* dinp) const {
    const ConvGeom g = geometry(ctx.n);
    engine.conv2d_backward(dinp, grads_, grads_ + g.weight_numel(), dout, ctx.out,
                           dout_is_dz ? Activation::linear : act_, ctx.inp, params_, g);
}

LayerOp Conv2D::op() const {
    LayerOp o;
    o.kind = LayerOp::Kind::conv2d;
    o.act = act_;
    o.conv = geom_;
    o.weight = params_;
    o.bias = params_ ? params_ + geom_.weight_numel() : nullptr;
    o.dweight = grads_;
    o.dbias = grads_ ? grads_ + geom_.weight_numel() : nullptr;
    return o;
}

// ---- Pool2D -------------------------------------------------------------------------------------

Pool2D::Pool2D(PoolMode mode, Window pool, Stride stride)
    : mode_(mode), pool_(pool), stride_(stride) {}

std::string Pool2D::spec() const {
    return std::string(type()) + " pool=" + window_str(pool_.h, pool_.w) +
           " stride=" + window_str(stride_.h, stride_.w);
}

Shape Pool2D::do_build(const Shape& in) {
    MINICNN_REQUIRE(in.size() == 3,
                    type() << ": expected a per-sample input (h, w, c), got " << shape_str(in));
    geom_ = pool_geometry({1, in[0], in[1], in[2]}, pool_, stride_, type());
    return {geom_.oh, geom_.ow, geom_.c};
}

PoolGeom Pool2D::geometry(std::int64_t n) const {
    PoolGeom g = geom_;
    g.n = n;
    return g;
}

LayerContext Pool2D::forward(Engine& engine, const float* inp, float* out, std::int32_t* mask,
                             std::int64_t n) const {
    const PoolGeom g = geometry(n);
    if (mode_ == PoolMode::max) {
        engine.maxpool2d_forward(out, mask, inp, g);
    } else {
        engine.avgpool2d_forward(out, inp, g);
    }
    return {inp, out, mask, n};
}

void Pool2D::backward(Engine& engine, const LayerContext& ctx, float* dout, bool,
                      float* dinp) const {
    if (!dinp) return;
    const PoolGeom g = geometry(ctx.n);
    if (mode_ == PoolMode::max) {
        engine.maxpool2d_backward(dinp, dout, ctx.mask, g);
    } else {
        engine.avgpool2d_backward(dinp, dout, g);
    }
}

LayerOp Pool2D::op() const {
    LayerOp o;
    o.kind = mode_ == PoolMode::max ? LayerOp::Kind::max_pool : LayerOp::Kind::avg_pool;
    o.pool = geom_;
    return o;
}

// ---- Flatten ------------------------------------------------------------------------------------

Shape Flatten::do_build(const Shape& in) {
    return {shape_numel(in)};
}

LayerContext Flatten::forward(Engine&, const float* inp, float*, std::int32_t*,
                              std::int64_t n) const {
    return {inp, inp, nullptr, n};  // NHWC rows are already the flattened vectors
}

void Flatten::backward(Engine& engine, const LayerContext& ctx, float* dout, bool,
                       float* dinp) const {
    if (dinp) engine.copy(dinp, dout, std::size_t(ctx.n * input_numel()) * sizeof(float));
}

LayerOp Flatten::op() const {
    LayerOp o;
    o.kind = LayerOp::Kind::reshape;
    return o;
}

// ---- Dense --------------------------------------------------------------------------------------

Dense::Dense(int units, Activation activation) : units_(units), act_(activation) {
    MINICNN_REQUIRE(units > 0, "Dense: units must be positive, got " << units);
}

std::string Dense::spec() const {
    return std::string("Dense units=") + std::to_string(units_) +
           " activation=" + activation_name(act_);
}

Shape Dense::do_build(const Shape& in) {
    MINICNN_REQUIRE(in.size() == 1, "Dense: expected a flat per-sample input (features), got "
                                        << shape_str(in) << "; add a Flatten layer before it");
    return {units_};
}

std::vector<ParamInfo> Dense::param_info() const {
    const std::int64_t n_in = input_shape().at(0);
    return {{"kernel", {n_in, units_}, n_in}, {"bias", {units_}, 0}};
}

void Dense::reserve(Engine& engine, std::int64_t max_batch) const {
    engine.reserve_dense(max_batch, input_shape().at(0), units_);
}

LayerContext Dense::forward(Engine& engine, const float* inp, float* out, std::int32_t*,
                            std::int64_t n) const {
    const std::int64_t n_in = input_shape().at(0);
    engine.dense_forward(out, inp, params_, params_ + n_in * units_, n, n_in, units_, act_);
    return {inp, out, nullptr, n};
}

void Dense::backward(Engine& engine, const LayerContext& ctx, float* dout, bool dout_is_dz,
                     float* dinp) const {
    const std::int64_t n_in = input_shape().at(0);
    engine.dense_backward(dinp, grads_, grads_ + n_in * units_, dout, ctx.out,
                          dout_is_dz ? Activation::linear : act_, ctx.inp, params_, ctx.n, n_in,
                          units_);
}

LayerOp Dense::op() const {
    const std::int64_t n_in = input_shape().at(0);
    LayerOp o;
    o.kind = LayerOp::Kind::dense;
    o.act = act_;
    o.n_in = n_in;
    o.n_out = units_;
    o.weight = params_;
    o.bias = params_ ? params_ + n_in * units_ : nullptr;
    o.dweight = grads_;
    o.dbias = grads_ ? grads_ + n_in * units_ : nullptr;
    return o;
}

// ---- ActivationLayer ----------------------------------------------------------------------------

std::string ActivationLayer::spec() const {
    return std::string("Activation activation=") + activation_name(act_);
}

LayerContext ActivationLayer::forward(Engine& engine, const float* inp, float* out, std::int32_t*,
                                      std::int64_t n) const {
    const std::int64_t cols = output_shape().back();
    engine.activation_forward(out, inp, n * output_numel() / cols, cols, act_);
    return {inp, out, nullptr, n};
}

void ActivationLayer::backward(Engine& engine, const LayerContext& ctx, float* dout,
                               bool dout_is_dz, float* dinp) const {
    if (!dinp) return;
    const std::int64_t cols = output_shape().back();
    if (dout_is_dz) {
        engine.copy(dinp, dout, std::size_t(ctx.n * output_numel()) * sizeof(float));
    } else {
        engine.activation_backward(dinp, dout, ctx.out, ctx.n * output_numel() / cols, cols, act_);
    }
}

LayerOp ActivationLayer::op() const {
    LayerOp o;
    o.kind = LayerOp::Kind::activation;
    o.act = act_;
    return o;
}

// ---- Dropout ------------------------------------------------------------------------------------

Dropout::Dropout(float rate) : rate_(rate) {
    MINICNN_REQUIRE(std::isfinite(rate) && rate >= 0.0f && rate < 1.0f,
                    "Dropout: rate must be in [0, 1), got " << float_str(rate));
}

std::string Dropout::spec() const {
    return "Dropout rate=" + float_str(rate_);
}

LayerContext Dropout::forward(Engine&, const float* inp, float*, std::int32_t*,
                              std::int64_t n) const {
    return {inp, inp, nullptr, n};  // evaluation: the identity, no copy
}

LayerContext Dropout::forward_train(Engine& engine, const float* inp, float* out,
                                    std::int32_t* mask, std::int64_t n, const TrainingStep& t,
                                    std::size_t index) const {
    engine.dropout_forward(out, mask, inp, n * output_numel(), output_numel(), rate_, index, t);
    return {inp, out, mask, n};
}

void Dropout::backward(Engine& engine, const LayerContext& ctx, float* dout, bool,
                       float* dinp) const {
    if (!dinp) return;
    const std::int64_t count = ctx.n * output_numel();
    if (ctx.mask) {
        engine.dropout_backward(dinp, dout, ctx.mask, count, rate_);
    } else {  // after an evaluation forward: the identity's gradient
        engine.copy(dinp, dout, std::size_t(count) * sizeof(float));
    }
}

LayerOp Dropout::op() const {
    LayerOp o;
    o.kind = LayerOp::Kind::dropout;
    return o;
}

}  // namespace minicnn
