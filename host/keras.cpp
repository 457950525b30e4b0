// host/keras.cpp — Keras model.to_json() → Sequential (minicnn/keras.h), parsed with nlohmann-json
// (a private, header-only dependency of the library).
//
// Each layer's config is read field by field; every refusal is a Refusal (an ArgumentError) whose
// one line is "<source>: layer '<name>' (<Class>): <field>: <why>". The model is built layer by
// layer so that a layer's padding rule can see its input's size.
#include "minicnn/keras.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

#include "minicnn/error.h"
#include "minicnn/geometry.h"

namespace minicnn {

namespace {

using json = nlohmann::json;

// One layer of the file, as errors name it.
struct Where {
    const std::string& source;
    std::string name, cls;

    [[noreturn]] void refuse(const std::string& field, const std::string& why) const {
        throw ArgumentError(source + ": layer '" + name + "' (" + cls + "): " + field + ": " + why);
    }
};

std::string dump(const json& v) {
    return v.dump();
}

int positive_int(const Where& w, const json& v, const std::string& field) {
    if (!v.is_number_integer() || v.get<long long>() <= 0 || v.get<long long>() > (1 << 30))
        w.refuse(field, "expected a positive integer, got " + dump(v));
    return v.get<int>();
}

// kernel_size, strides, pool_size: [a, b] or a.
std::pair<int, int> int_pair(const Where& w, const json& cfg, const std::string& field) {
    if (!cfg.contains(field)) w.refuse(field, "missing");
    const json& v = cfg[field];
    if (v.is_array()) {
        if (v.size() != 2) w.refuse(field, "expected two values, got " + dump(v));
        return {positive_int(w, v[0], field), positive_int(w, v[1], field)};
    }
    const int a = positive_int(w, v, field);
    return {a, a};
}

// A field that must be null (or absent) for minicnn to honour the layer.
void require_null(const Where& w, const json& cfg, const char* field) {
    if (cfg.contains(field) && !cfg[field].is_null())
        w.refuse(field, std::string("must be null (minicnn has no ") + field + "), got " +
                            dump(cfg[field]));
}

// The initializer's Keras class name ("Zeros", "HeNormal") or the string form ("zeros").
std::string initializer_name(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("class_name") && v["class_name"].is_string())
        return v["class_name"].get<std::string>();
    return dump(v);
}

// The fields every layer may carry: trainable, dtype (a string in Keras 2, a DTypePolicy object in
// Keras 3), data_format.
void check_common(const Where& w, const json& cfg) {
    if (cfg.contains("trainable") && cfg["trainable"] == false)
        w.refuse("trainable", "false is not supported (minicnn trains every layer)");
    if (cfg.contains("dtype") && !cfg["dtype"].is_null()) {
        const json& d = cfg["dtype"];
        std::string name = d.is_string() ? d.get<std::string>() : "";
        if (d.is_object() && d.contains("config") && d["config"].is_object() &&
            d["config"].contains("name") && d["config"]["name"].is_string())
            name = d["config"]["name"].get<std::string>();
        if (name != "float32") w.refuse("dtype", "expected float32, got " + dump(d));
    }
    if (cfg.contains("data_format") && !cfg["data_format"].is_null() &&
        cfg["data_format"] != "channels_last")
        w.refuse("data_format",
                 "expected channels_last (minicnn is NHWC), got " + dump(cfg["data_format"]));
}

Activation activation_of(const Where& w, const json& cfg) {
    if (!cfg.contains("activation") || cfg["activation"].is_null()) return Activation::linear;
    const json& a = cfg["activation"];
    if (!a.is_string())
        w.refuse("activation",
                 "expected one of linear, relu, tanh, sigmoid, softmax, got " + dump(a));
    const std::string s = a.get<std::string>();
    if (s != "linear" && s != "relu" && s != "tanh" && s != "sigmoid" && s != "softmax")
        w.refuse("activation",
                 "expected one of linear, relu, tanh, sigmoid, softmax, got \"" + s + "\"");
    return parse_activation(s);
}

// Conv2D and Dense: use_bias, initializers, regularizers, constraints. Returns how the kernel is
// initialised.
KernelInit check_weights(const Where& w, const json& cfg) {
    if (cfg.contains("use_bias") && cfg["use_bias"] != true)
        w.refuse("use_bias", "false is not supported (every minicnn Conv2D and Dense has a bias)");
    if (cfg.contains("bias_initializer")) {
        const std::string b = initializer_name(cfg["bias_initializer"]);
        if (b != "Zeros" && b != "zeros")
            w.refuse("bias_initializer",
                     "expected zeros (minicnn's biases start at zero), got " + b);
    }
    for (const char* f : {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                          "kernel_constraint", "bias_constraint", "lora_rank"})
        require_null(w, cfg, f);
    if (!cfg.contains("kernel_initializer")) return KernelInit::glorot_uniform;  // Keras's default
    const std::string k = initializer_name(cfg["kernel_initializer"]);
    if (k == "HeNormal" || k == "he_normal") return KernelInit::he_normal;
    if (k == "GlorotUniform" || k == "glorot_uniform") return KernelInit::glorot_uniform;
    if (k == "Zeros" || k == "zeros") return KernelInit::zeros;
    w.refuse("kernel_initializer", "expected HeNormal, GlorotUniform or Zeros, got " + k);
}

// The padding of one axis as Keras computes it for "same": {total, output}.
std::pair<std::int64_t, std::int64_t> keras_same(std::int64_t in, int k, int s) {
    const std::int64_t out = (in + s - 1) / s;
    return {std::max<std::int64_t>((out - 1) * s + k - in, 0), out};
}

std::string padding_of(const Where& w, const json& cfg) {
    if (!cfg.contains("padding")) return "valid";
    const json& p = cfg["padding"];
    if (p != "valid" && p != "same")
        w.refuse("padding", "expected \"valid\" or \"same\", got " + dump(p));
    return p.get<std::string>();
}

Padding conv_padding(const Where& w, const json& cfg, const Shape& in, std::pair<int, int> k,
                     std::pair<int, int> s) {
    if (padding_of(w, cfg) == "valid") return Padding::valid();
    if (in.size() != 3) return Padding::valid();  // the layer's build names the bad input
    const auto th = keras_same(in[0], k.first, s.first), tw = keras_same(in[1], k.second, s.second);
    if (th.first % 2 != 0 || tw.first % 2 != 0) {
        std::ostringstream os;
        os << "'same' with kernel " << k.first << "x" << k.second << " and stride " << s.first
           << "x" << s.second << " on a " << in[0] << "x" << in[1] << " input pads " << th.first
           << " rows and " << tw.first
           << " columns in all, Keras putting the odd one at the bottom/right; minicnn pads "
              "symmetrically only (use an odd kernel at stride 1, or 'valid')";
        w.refuse("padding", os.str());
    }
    // Where the exercise's "same" pads the same (an odd kernel at stride 1), say so: the spec then
    // reads "same", as lenet5()'s does.
    if (same_padding(in[0], k.first, s.first) == th.first / 2 &&
        same_padding(in[1], k.second, s.second) == tw.first / 2)
        return Padding::same();
    return Padding::explicit_pad(int(th.first / 2), int(tw.first / 2));
}

// The per-sample shape of a Keras batch shape [null, h, w, c] (nulls taken from the data).
Shape input_shape_of(const Where& w, const json& v, const char* field, const Shape& data) {
    if (!v.is_array() || v.size() < 2) w.refuse(field, "expected [null, h, w, c], got " + dump(v));
    Shape s;
    for (std::size_t i = 1; i < v.size(); ++i) {
        if (v[i].is_null() && data.size() == v.size() - 1) {
            s.push_back(data[i - 1]);
        } else {
            s.push_back(positive_int(w, v[i], field));
        }
    }
    if (!data.empty() && s != data)
        w.refuse(field, "the model's input " + shape_str(s) + " does not match the data's images " +
                            shape_str(data));
    return s;
}

std::string str_field(const json& cfg, const char* key, const std::string& fallback) {
    return cfg.is_object() && cfg.contains(key) && cfg[key].is_string()
               ? cfg[key].get<std::string>()
               : fallback;
}

}  // namespace

Sequential model_from_keras_json(const std::string& text, const KerasOptions& options) {
    const std::string& src = options.source;
    json root;
    try {
        root = json::parse(text);
    } catch (const json::parse_error& e) {
        throw ArgumentError(src + ": not JSON: " + e.what());
    }
    MINICNN_REQUIRE(root.is_object() && root.contains("class_name"),
                    src << ": expected the JSON of Keras's model.to_json() (an object with "
                           "\"class_name\" and \"config\")");
    MINICNN_REQUIRE(
        root["class_name"] == "Sequential",
        src << ": class_name: expected a Sequential model, got " << dump(root["class_name"]));
    const json cfg = root.contains("config") ? root["config"] : json();
    // Keras 2.0-2.2 wrote the layers as the config itself.
    const json layers =
        cfg.is_array() ? cfg : (cfg.is_object() && cfg.contains("layers") ? cfg["layers"] : json());
    MINICNN_REQUIRE(layers.is_array() && !layers.empty(),
                    src << ": config.layers: expected a list of layers");
    const std::string model_name = str_field(cfg, "name", "sequential");

    // Pass 1: the input shape (an InputLayer's batch_input_shape / batch_shape, or the first
    // layer's batch_input_shape), so that the model can be made before its layers.
    Shape in;
    for (std::size_t i = 0; i < layers.size() && in.empty(); ++i) {
        const json& l = layers[i];
        const json lc = l.is_object() && l.contains("config") ? l["config"] : json::object();
        const Where w{src, str_field(lc, "name", "#" + std::to_string(i)),
                      str_field(l, "class_name", "?")};
        for (const char* f : {"batch_input_shape", "batch_shape"}) {
            if (lc.is_object() && lc.contains(f) && !lc[f].is_null()) {
                in = input_shape_of(w, lc[f], f, options.input_shape);
                break;
            }
        }
        if (w.cls != "InputLayer") break;  // only an InputLayer or the first layer says it
    }
    if (in.empty()) {
        MINICNN_REQUIRE(!options.input_shape.empty(),
                        src << ": no input shape (neither an InputLayer's batch_shape nor a first "
                               "layer's batch_input_shape), and no data to take it from");
        in = options.input_shape;
    }

    Sequential m(in, model_name);
    std::vector<KernelInit> inits;  // one per layer added
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const json& l = layers[i];
        const json lc = l.is_object() && l.contains("config") ? l["config"] : json();
        const Where w{src, str_field(lc, "name", "#" + std::to_string(i)),
                      str_field(l, "class_name", "?")};
        if (!l.is_object() || !l.contains("class_name") || !l["class_name"].is_string())
            w.refuse("class_name", "expected a layer's class name, got " + dump(l));
        if (!lc.is_object()) w.refuse("config", "expected an object, got " + dump(lc));
        if (w.cls == "InputLayer") {
            if (lc.contains("sparse") && lc["sparse"] == true)
                w.refuse("sparse", "true is not supported");
            if (lc.contains("ragged") && lc["ragged"] == true)
                w.refuse("ragged", "true is not supported");
            continue;
        }
        const std::vector<std::string> known{"Conv2D",  "MaxPooling2D", "AveragePooling2D",
                                             "Flatten", "Dense",        "Activation",
                                             "Dropout"};
        if (std::find(known.begin(), known.end(), w.cls) == known.end())
            w.refuse("class_name",
                     "not a layer minicnn has (InputLayer, Conv2D, MaxPooling2D, "
                     "AveragePooling2D, Flatten, Dense, Activation, Dropout)");
        check_common(w, lc);
        const Shape cur = m.output_shape();
        std::unique_ptr<Layer> layer;
        KernelInit init = KernelInit::he_normal;  // layers without parameters ignore it
        if (w.cls == "Conv2D") {
            if (lc.contains("dilation_rate") &&
                int_pair(w, lc, "dilation_rate") != std::make_pair(1, 1))
                w.refuse("dilation_rate", "expected 1 (minicnn has no dilated convolution), got " +
                                              dump(lc["dilation_rate"]));
            if (lc.contains("groups") && lc["groups"] != 1)
                w.refuse("groups", "expected 1 (minicnn has no grouped convolution), got " +
                                       dump(lc["groups"]));
            init = check_weights(w, lc);
            if (!lc.contains("filters")) w.refuse("filters", "missing");
            const int filters = positive_int(w, lc["filters"], "filters");
            const auto k = int_pair(w, lc, "kernel_size");
            const auto s =
                lc.contains("strides") ? int_pair(w, lc, "strides") : std::make_pair(1, 1);
            const Padding p = conv_padding(w, lc, cur, k, s);
            layer = std::make_unique<Conv2D>(filters, Window{k.first, k.second}, p,
                                             Stride{s.first, s.second}, activation_of(w, lc));
        } else if (w.cls == "MaxPooling2D" || w.cls == "AveragePooling2D") {
            const auto k = int_pair(w, lc, "pool_size");
            const auto s =
                lc.contains("strides") && !lc["strides"].is_null() ? int_pair(w, lc, "strides") : k;
            if (padding_of(w, lc) == "same" && cur.size() == 3 &&
                (keras_same(cur[0], k.first, s.first).first != 0 ||
                 keras_same(cur[1], k.second, s.second).first != 0))
                w.refuse("padding",
                         "'same' pooling that pads is not supported (minicnn pools "
                         "without padding; here 'same' and 'valid' differ)");
            layer =
                std::make_unique<Pool2D>(w.cls == "MaxPooling2D" ? PoolMode::max : PoolMode::avg,
                                         Window{k.first, k.second}, Stride{s.first, s.second});
        } else if (w.cls == "Flatten") {
            layer = std::make_unique<Flatten>();
        } else if (w.cls == "Dropout") {
            // A seed in the file is ignored: the units are drawn from the run's seed.
            require_null(w, lc, "noise_shape");
            if (!lc.contains("rate")) w.refuse("rate", "missing");
            const json& r = lc["rate"];
            if (!r.is_number() || !(r.get<double>() >= 0.0 && r.get<double>() < 1.0))
                w.refuse("rate", "expected a number in [0, 1), got " + dump(r));
            layer = std::make_unique<Dropout>(r.get<float>());
        } else if (w.cls == "Dense") {
            init = check_weights(w, lc);
            if (!lc.contains("units")) w.refuse("units", "missing");
            layer = std::make_unique<Dense>(positive_int(w, lc["units"], "units"),
                                            activation_of(w, lc));
        } else {
            layer = std::make_unique<ActivationLayer>(activation_of(w, lc));
        }
        try {
            m.add(std::move(layer));
        } catch (const ArgumentError& e) {
            w.refuse("input", e.what());  // the shapes do not fit (e.g. a Dense on (h, w, c))
        }
        inits.push_back(init);
    }
    m.init_params(options.seed, inits);
    return m;
}

}  // namespace minicnn
