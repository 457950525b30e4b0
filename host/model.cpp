// host/model.cpp — Sequential (minicnn/model.h): building layers against the running output shape,
// the parameter arena, He-normal initialisation, the Keras-like summary, and lenet5().
#include "minicnn/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <map>
#include <random>
#include <sstream>

#include "minicnn/error.h"

namespace minicnn {

namespace {

// Keras' default layer names: "conv2d", "conv2d_1", ..., from the class name in snake case.
std::string keras_base_name(const std::string& type) {
    if (type == "Conv2D") return "conv2d";
    if (type == "MaxPooling2D") return "max_pooling2d";
    if (type == "AveragePooling2D") return "average_pooling2d";
    if (type == "Flatten") return "flatten";
    if (type == "Dense") return "dense";
    if (type == "Dropout") return "dropout";
    return "activation";
}

// A uniform double in [0, 1) with 53 random bits.
double uniform01(std::mt19937_64& rng) {
    return double(rng() >> 11) * 0x1.0p-53;
}

// Standard normal by Box-Muller (portable: std::normal_distribution differs between libraries).
double standard_normal(std::mt19937_64& rng) {
    double u1 = uniform01(rng);
    while (u1 <= 0.0) u1 = uniform01(rng);
    const double u2 = uniform01(rng);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace

std::string format_thousands(std::int64_t v) {
    std::string digits = std::to_string(v < 0 ? -v : v), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return v < 0 ? "-" + out : out;
}

Sequential::Sequential(Shape input_shape, std::string name)
    : name_(std::move(name)), input_shape_(std::move(input_shape)) {
    MINICNN_REQUIRE(!input_shape_.empty(), "Sequential: the input shape must not be empty");
    for (std::int64_t d : input_shape_) {
        MINICNN_REQUIRE(d > 0, "Sequential: input shape "
                                   << shape_str(input_shape_)
                                   << " has a dimension that is not positive");
    }
}

const Shape& Sequential::output_shape() const {
    return layers_.empty() ? input_shape_ : layers_.back()->output_shape();
}

Sequential& Sequential::add(std::unique_ptr<Layer> layer) {
    MINICNN_REQUIRE(layer != nullptr, "Sequential::add: null layer");
    try {
        layer->build(output_shape());
    } catch (const ArgumentError& e) {
        throw ArgumentError("Sequential '" + name_ + "', layer " + std::to_string(layers_.size()) +
                            " (" + layer->type() + "): " + e.what());
    }
    int same_type = 0;
    for (const auto& l : layers_) same_type += std::string(l->type()) == layer->type();
    layer->name = keras_base_name(layer->type()) +
                  (same_type ? "_" + std::to_string(same_type) : std::string());
    offsets_.push_back(param_count());
    params_.resize(params_.size() + std::size_t(layer->param_count()), 0.0f);
    layers_.push_back(std::move(layer));
    return *this;
}

Sequential& Sequential::conv2d(int filters, Window kernel, Padding padding, Activation activation,
                               Stride stride) {
    return add(std::make_unique<Conv2D>(filters, kernel, padding, stride, activation));
}
Sequential& Sequential::maxpool2d(Window pool) {
    return maxpool2d(pool, Stride{pool.h, pool.w});
}
Sequential& Sequential::maxpool2d(Window pool, Stride stride) {
    return add(std::make_unique<Pool2D>(PoolMode::max, pool, stride));
}
Sequential& Sequential::avgpool2d(Window pool) {
    return avgpool2d(pool, Stride{pool.h, pool.w});
}
Sequential& Sequential::avgpool2d(Window pool, Stride stride) {
    return add(std::make_unique<Pool2D>(PoolMode::avg, pool, stride));
}
Sequential& Sequential::flatten() {
    return add(std::make_unique<Flatten>());
}
Sequential& Sequential::dense(int units, Activation activation) {
    return add(std::make_unique<Dense>(units, activation));
}
Sequential& Sequential::activation(Activation activation) {
    return add(std::make_unique<ActivationLayer>(activation));
}
Sequential& Sequential::dropout(float rate) {
    return add(std::make_unique<Dropout>(rate));
}

void Sequential::init_params(std::uint64_t seed, const std::vector<KernelInit>& kernel_init) {
    MINICNN_REQUIRE(kernel_init.empty() || kernel_init.size() == layers_.size(),
                    "Sequential::init_params: " << kernel_init.size() << " kernel initialisers for "
                                                << layers_.size()
                                                << " layers; expected one per layer or none");
    std::mt19937_64 rng(seed);
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        const KernelInit how = kernel_init.empty() ? KernelInit::he_normal : kernel_init[i];
        float* p = params_.data() + offsets_[i];
        for (const ParamInfo& info : layers_[i]->param_info()) {
            const std::int64_t n = shape_numel(info.shape);
            if (info.fan_in > 0 && how == KernelInit::he_normal) {
                const double stddev = std::sqrt(2.0 / double(info.fan_in));
                for (std::int64_t j = 0; j < n; ++j) {
                    double z = standard_normal(rng);
                    while (std::fabs(z) > 2.0) z = standard_normal(rng);  // truncated at 2 stddev
                    p[j] = float(z * stddev);
                }
            } else if (info.fan_in > 0 && how == KernelInit::glorot_uniform) {
                // (kh, kw, c, k) or (n_in, n_out): fan_out = numel / c = kh*kw*k, or n_out.
                const std::int64_t fan_out = n / info.shape[info.shape.size() - 2];
                const double limit = std::sqrt(6.0 / double(info.fan_in + fan_out));
                for (std::int64_t j = 0; j < n; ++j)
                    p[j] = float((2.0 * uniform01(rng) - 1.0) * limit);
            } else {
                std::fill(p, p + n, 0.0f);
            }
            p += n;
        }
    }
}

std::string Sequential::summary() const {
    std::ostringstream os;
    // The first column is as wide as the longest "name (Type)" plus a gap (at least Keras's 28),
    // so a long name such as "max_pooling2d_1 (MaxPooling2D)" never runs into its shape.
    std::size_t name_w = 28;
    for (const auto& l : layers_)
        name_w = std::max(name_w, l->name.size() + std::strlen(l->type()) + 5);
    const std::string rule(name_w + 37, '_'), dbl(name_w + 37, '=');
    auto row = [&](const std::string& a, const std::string& b, const std::string& c) {
        os << ' ' << std::left << std::setw(int(name_w)) << a << std::setw(26) << b << c << '\n';
    };
    os << "Model: \"" << name_ << "\"\n" << rule << '\n';
    row("Layer (type)", "Output Shape", "Param #");
    os << dbl << '\n';
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        const Layer& l = *layers_[i];
        std::string shape = "(None";
        for (std::int64_t d : l.output_shape()) shape += ", " + std::to_string(d);
        shape += ")";
        row(l.name + " (" + l.type() + ")", shape, format_thousands(l.param_count()));
        if (i + 1 < layers_.size()) os << '\n';
    }
    os << dbl << '\n';
    os << "Total params: " << format_thousands(param_count()) << '\n';
    os << "Trainable params: " << format_thousands(param_count()) << '\n';
    os << "Non-trainable params: 0\n" << rule << '\n';
    return os.str();
}

std::string Sequential::spec() const {
    std::ostringstream os;
    os << "input";
    for (std::size_t i = 0; i < input_shape_.size(); ++i) os << (i ? "," : " ") << input_shape_[i];
    os << '\n';
    for (const auto& l : layers_) os << l->spec() << '\n';
    return os.str();
}

Sequential Sequential::from_spec(const std::string& spec, std::string name) {
    std::istringstream is(spec);
    std::string line;
    MINICNN_REQUIRE(std::getline(is, line) && line.rfind("input ", 0) == 0,
                    "model spec: expected a first line 'input h,w,c', got '" << line << "'");
    Shape in;
    std::istringstream dims(line.substr(6));
    std::string d;
    while (std::getline(dims, d, ',')) {
        try {
            in.push_back(std::stoll(d));
        } catch (const std::exception&) {
            throw ArgumentError("model spec: bad input dimension '" + d + "' in '" + line + "'");
        }
    }
    Sequential m(in, std::move(name));
    while (std::getline(is, line)) {
        if (!line.empty()) m.add(Layer::from_spec(line));
    }
    return m;
}

Sequential lenet5(std::uint64_t seed) {
    Sequential m({28, 28, 1}, "lenet5");
    m.conv2d(6, {5, 5}, Padding::same(), Activation::relu)       // C1: 1@28x28 -> 6@28x28
        .maxpool2d({2, 2})                                       // S2: 6@28x28 -> 6@14x14
        .conv2d(16, {5, 5}, Padding::valid(), Activation::relu)  // C3: 6@14x14 -> 16@10x10
        .maxpool2d({2, 2})                                       // S4: 16@10x10 -> 16@5x5
        .flatten()                                               // 16@5x5 -> 400
        .dense(120, Activation::relu)                            // F5: 400 -> 120
        .dense(84, Activation::relu)                             // F6: 120 -> 84
        .dense(10, Activation::softmax);                         // output: 84 -> 10
    m.init_params(seed);
    return m;
}

}  // namespace minicnn
