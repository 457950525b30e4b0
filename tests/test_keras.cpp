// tests/test_keras.cpp — Keras model files (minicnn/keras.h): the hand-written Keras 2 and Keras 3
// JSON of tests/data/keras/ (LeNet-5, and a CIFAR-shaped model) and the files Keras 3 wrote
// (make_keras_files.py: LeNet-5 with he_normal, a CIFAR-shaped model with Dropout) parsed into the
// expected models, Dropout in both forms,
// Keras's "same" mapped onto symmetric padding, and each refusal as one line that names the layer
// (name and class) and the field.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "minicnn/keras.h"
#include "minicnn/model.h"
#include "test_util.h"

namespace {

using minicnn::test::error_of;
using json = nlohmann::json;

std::string keras_file(const std::string& name) {
    std::ifstream f(std::string(MINICNN_SOURCE_DIR) + "/tests/data/keras/" + name);
    std::stringstream s;
    s << f.rdbuf();
    EXPECT_FALSE(s.str().empty()) << name;
    return s.str();
}

minicnn::Sequential parse(const std::string& text, minicnn::Shape data = {}) {
    minicnn::KerasOptions o;
    o.input_shape = std::move(data);
    o.source = "model.json";
    return minicnn::model_from_keras_json(text, o);
}

const char* const kCifarSpec =
    "input 32,32,3\n"
    "Conv2D filters=8 kernel=3x3 stride=1x1 padding=same activation=relu\n"
    "MaxPooling2D pool=2x2 stride=2x2\n"
    "Conv2D filters=16 kernel=3x3 stride=1x1 padding=same activation=relu\n"
    "%POOL% pool=2x2 stride=2x2\n"
    "Flatten\n"
    "Dense units=32 activation=relu\n"
    "Dense units=10 activation=softmax\n";

std::string cifar_spec(const std::string& pool) {
    std::string s = kCifarSpec;
    return s.replace(s.find("%POOL%"), 6, pool);
}

TEST(Keras, LeNet5InBothFormsIsTheExercisesLeNet5) {
    const minicnn::Sequential ref = minicnn::lenet5(7);
    for (const char* f : {"lenet5_keras2.json", "lenet5_keras3.json"}) {
        minicnn::KerasOptions o;
        o.seed = 7;
        const minicnn::Sequential m = minicnn::model_from_keras_json(keras_file(f), o);
        EXPECT_EQ(m.spec(), ref.spec()) << f;
        EXPECT_EQ(m.summary(), ref.summary()) << f;  // names, shapes, 61,706 parameters
        EXPECT_EQ(m.params(), ref.params()) << f;    // He normal from the same seed
    }
}

TEST(Keras, TheCifarShapedModelInBothForms) {
    const minicnn::Sequential k3 = parse(keras_file("cifar_keras3.json"), {32, 32, 3});
    EXPECT_EQ(k3.spec(), cifar_spec("MaxPooling2D"));
    EXPECT_EQ(k3.name(), "cifar_small");
    EXPECT_EQ(k3.param_count(), 224 + 1168 + 32800 + 330);
    const std::string s = k3.summary();
    for (const char* row :
         {"conv2d (Conv2D)", "(None, 32, 32, 8)", "max_pooling2d_1 (MaxPooling2D)",
          "(None, 8, 8, 16)", "flatten (Flatten)", "(None, 1024)", "dense_1 (Dense)",
          "Total params: 34,522"})
        EXPECT_NE(s.find(row), std::string::npos) << row << " in\n" << s;
    // Keras 2's old form: no InputLayer, batch_input_shape on the first layer; no data shape given.
    const minicnn::Sequential k2 = parse(keras_file("cifar_keras2.json"));
    EXPECT_EQ(k2.spec(), cifar_spec("AveragePooling2D"));
    EXPECT_EQ(k2.param_count(), 34522);
}

// A Keras 3 LeNet-5 with `edit` applied to its JSON.
std::string edited(const std::function<void(json&)>& edit) {
    json j = json::parse(keras_file("lenet5_keras3.json"));
    edit(j);
    return j.dump();
}
json& layer(json& j, int i) {
    return j["config"]["layers"][i]["config"];
}

// The refusal: one line, naming the layer and the field, with `why` in it.
void expect_refused(const std::string& text, const std::string& layer_and_class,
                    const std::string& field, const std::string& why = "",
                    minicnn::Shape data = {}) {
    const std::string e = error_of([&] { parse(text, data); });
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    EXPECT_EQ(e.rfind("model.json: layer " + layer_and_class + ": " + field + ": ", 0), 0u) << e;
    EXPECT_NE(e.find(why), std::string::npos) << why << " in " << e;
}

TEST(Keras, KerasSameBecomesSymmetricPaddingOrIsRefused) {
    // 4x4, stride 2 on 28x28: Keras pads 2 in all, 1 on each side; 14x14 out.
    minicnn::Sequential m = parse(edited([](json& j) {
        layer(j, 1)["kernel_size"] = {4, 4};
        layer(j, 1)["strides"] = {2, 2};
    }));
    EXPECT_NE(m.spec().find("kernel=4x4 stride=2x2 padding=1x1"), std::string::npos) << m.spec();
    EXPECT_EQ(m.layer(0).output_shape(), (minicnn::Shape{14, 14, 6}));
    // 4x4 at stride 1: 3 in all, Keras puts 1 on top and 2 at the bottom.
    expect_refused(edited([](json& j) {
                       layer(j, 1)["kernel_size"] = {4, 4};
                   }),
                   "'conv2d' (Conv2D)", "padding", "minicnn pads symmetrically only");
    // 3x3 at stride 2 on 28: 1 in all.
    expect_refused(edited([](json& j) {
                       layer(j, 1)["kernel_size"] = {3, 3};
                       layer(j, 1)["strides"] = {2, 2};
                   }),
                   "'conv2d' (Conv2D)", "padding", "pads 1 rows");
    // A 'same' pooling that pads is refused (2x2 stride 2 on 28 pads nothing, so it is taken).
    m = parse(edited([](json& j) { layer(j, 2)["padding"] = "same"; }));
    EXPECT_EQ(m.layer(1).output_shape(), (minicnn::Shape{14, 14, 6}));
    expect_refused(edited([](json& j) {
                       layer(j, 2)["pool_size"] = {3, 3};
                       layer(j, 2)["padding"] = "same";
                   }),
                   "'max_pooling2d' (MaxPooling2D)", "padding");
}

TEST(Keras, WhatMinicnnCannotHonourIsRefusedInOneLineNamingLayerAndField) {
    const std::string conv = "'conv2d_1' (Conv2D)", dense = "'dense' (Dense)";
    expect_refused(
        edited([](json& j) { j["config"]["layers"][3]["class_name"] = "BatchNormalization"; }),
        "'conv2d_1' (BatchNormalization)", "class_name", "not a layer minicnn has");
    expect_refused(edited([](json& j) { layer(j, 3)["data_format"] = "channels_first"; }), conv,
                   "data_format", "channels_first");
    expect_refused(edited([](json& j) {
                       layer(j, 3)["dilation_rate"] = {2, 2};
                   }),
                   conv, "dilation_rate");
    expect_refused(edited([](json& j) { layer(j, 3)["groups"] = 2; }), conv, "groups");
    expect_refused(edited([](json& j) { layer(j, 3)["use_bias"] = false; }), conv, "use_bias");
    expect_refused(edited([](json& j) {
                       layer(j, 6)["kernel_regularizer"] = {{"module", "keras.regularizers"},
                                                            {"class_name", "L2"},
                                                            {"config", {{"l2", 0.01}}}};
                   }),
                   dense, "kernel_regularizer");
    expect_refused(edited([](json& j) {
                       layer(j, 6)["bias_constraint"] = {{"class_name", "NonNeg"}};
                   }),
                   dense, "bias_constraint");
    expect_refused(edited([](json& j) {
                       layer(j, 6)["activity_regularizer"] = {{"class_name", "L1"}};
                   }),
                   dense, "activity_regularizer");
    expect_refused(edited([](json& j) {
                       layer(j, 6)["bias_initializer"] = {{"class_name", "Ones"}};
                   }),
                   dense, "bias_initializer", "Ones");
    expect_refused(edited([](json& j) { layer(j, 6)["activation"] = "gelu"; }), dense, "activation",
                   "gelu");
    expect_refused(
        edited([](json& j) { layer(j, 6)["dtype"]["config"]["name"] = "mixed_float16"; }), dense,
        "dtype", "mixed_float16");
    expect_refused(edited([](json& j) { layer(j, 6)["trainable"] = false; }), dense, "trainable");
    // A Dense straight after a pooling (no Flatten): minicnn's Dense takes (features).
    expect_refused(edited([](json& j) { j["config"]["layers"].erase(5); }), dense, "input");
    // The data's images are not the model's input.
    expect_refused(keras_file("lenet5_keras3.json"), "'input_layer' (InputLayer)", "batch_shape",
                   "(32, 32, 3)", {32, 32, 3});
    expect_refused(keras_file("lenet5_keras2.json"), "'conv2d_input' (InputLayer)",
                   "batch_input_shape", "does not match", {32, 32, 3});
}

// GlorotUniform kernels are uniform in [-l, l], l = sqrt(6 / (fan_in + fan_out)), biases zero; Zeros
// gives zeros; another initializer is refused.
TEST(Keras, KernelInitializersAreHonoured) {
    const minicnn::Sequential m = parse(keras_file("cifar_keras3.json"));
    auto check_glorot = [&](std::size_t layer, std::int64_t fan_in, std::int64_t fan_out) {
        const float* w = m.params().data() + m.param_offset(layer);
        const std::int64_t n = fan_in * fan_out / (layer == 0 || layer == 2 ? 9 : 1);
        const double limit = std::sqrt(6.0 / double(fan_in + fan_out));
        double sum2 = 0, worst = 0;
        for (std::int64_t j = 0; j < n; ++j) {
            sum2 += double(w[j]) * w[j];
            worst = std::max(worst, std::fabs(double(w[j])));
        }
        EXPECT_LE(worst, limit) << "layer " << layer;
        EXPECT_GT(worst, 0.9 * limit) << "layer " << layer;
        const double rms = std::sqrt(sum2 / double(n));  // uniform: limit / sqrt(3)
        EXPECT_NEAR(rms, limit / std::sqrt(3.0), 0.1 * limit) << "layer " << layer;
    };
    check_glorot(0, 3 * 3 * 3, 3 * 3 * 8);   // conv2d (3, 3, 3, 8)
    check_glorot(2, 3 * 3 * 8, 3 * 3 * 16);  // conv2d_1 (3, 3, 8, 16)
    check_glorot(5, 1024, 32);               // dense (1024, 32)
    const float* bias = m.params().data() + m.param_offset(5) + 1024 * 32;
    EXPECT_TRUE(std::all_of(bias, bias + 32, [](float b) { return b == 0.0f; }));

    const minicnn::Sequential z = parse(edited([](json& j) {
        layer(j, 6)["kernel_initializer"] = {
            {"module", "keras.initializers"}, {"class_name", "Zeros"}, {"config", json::object()}};
    }));
    const float* w = z.params().data() + z.param_offset(5);
    EXPECT_TRUE(std::all_of(w, w + 400 * 120, [](float v) { return v == 0.0f; }));
    expect_refused(edited([](json& j) {
                       layer(j, 6)["kernel_initializer"] = {{"class_name", "RandomNormal"},
                                                            {"config", {{"stddev", 0.05}}}};
                   }),
                   "'dense' (Dense)", "kernel_initializer", "RandomNormal");
}

// Dropout in both forms: Keras 3's (a DTypePolicy, a seed) and Keras 2's (dtype a string); its
// rate is taken, its seed ignored (the run's seed draws the units); a noise_shape or a rate outside
// [0, 1) is refused in one line naming the layer and the field.
json keras3_dropout(double rate) {
    return json{{"module", "keras.layers"},
                {"class_name", "Dropout"},
                {"config",
                 {{"name", "dropout"},
                  {"trainable", true},
                  {"dtype",
                   {{"module", "keras"},
                    {"class_name", "DTypePolicy"},
                    {"config", {{"name", "float32"}}},
                    {"registered_name", nullptr}}},
                  {"rate", rate},
                  {"seed", 1234},
                  {"noise_shape", nullptr}}},
                {"registered_name", nullptr},
                {"build_config", {{"input_shape", {nullptr, 120}}}}};
}

TEST(Keras, DropoutInBothFormsKeepsItsRate) {
    // Keras 3: after dense (layer 6 of the file, index 7 in its list).
    std::string text = edited([](json& j) {
        j["config"]["layers"].insert(j["config"]["layers"].begin() + 7, keras3_dropout(0.5));
    });
    minicnn::Sequential m = parse(text);
    ASSERT_EQ(m.size(), 9u);
    EXPECT_EQ(m.layer(6).spec(), "Dropout rate=0.5");
    EXPECT_EQ(m.layer(6).name, "dropout");
    EXPECT_NE(m.summary().find("dropout (Dropout)"), std::string::npos) << m.summary();
    EXPECT_EQ(m.param_count(), 61706);
    // Keras 2: dtype a string, no module.
    json k2 = json::parse(keras_file("lenet5_keras2.json"));
    k2["config"]["layers"].insert(k2["config"]["layers"].begin() + 6,
                                  json{{"class_name", "Dropout"},
                                       {"config",
                                        {{"name", "dropout"},
                                         {"trainable", true},
                                         {"dtype", "float32"},
                                         {"rate", 0.3},
                                         {"noise_shape", nullptr},
                                         {"seed", nullptr}}}});
    m = parse(k2.dump());
    EXPECT_EQ(m.layer(5).type(), std::string("Dropout"));
    EXPECT_EQ(static_cast<const minicnn::Dropout&>(m.layer(5)).rate(), 0.3f);

    auto with = [](const std::function<void(json&)>& edit) {
        return edited([&](json& j) {
            json d = keras3_dropout(0.5);
            edit(d["config"]);
            j["config"]["layers"].insert(j["config"]["layers"].begin() + 7, d);
        });
    };
    const std::string drop = "'dropout' (Dropout)";
    expect_refused(with([](json& c) {
                       c["noise_shape"] = {nullptr, 1};
                   }),
                   drop, "noise_shape", "must be null");
    expect_refused(with([](json& c) { c["rate"] = 1.0; }), drop, "rate", "[0, 1)");
    expect_refused(with([](json& c) { c["rate"] = -0.5; }), drop, "rate", "-0.5");
    expect_refused(with([](json& c) { c["rate"] = "half"; }), drop, "rate", "half");
    expect_refused(with([](json& c) { c.erase("rate"); }), drop, "rate", "missing");
}

// Files Keras 3 itself wrote (tests/data/keras/make_keras_files.py says how): the exercise's
// LeNet-5 with he_normal on every layer, and the CIFAR-shaped model with dropout.
TEST(Keras, FilesThatKeras3WroteAreRead) {
    minicnn::KerasOptions o;
    o.seed = 7;
    const minicnn::Sequential lenet =
        minicnn::model_from_keras_json(keras_file("lenet5_he_keras3.json"), o);
    const minicnn::Sequential ref = minicnn::lenet5(7);
    EXPECT_EQ(lenet.spec(), ref.spec());
    EXPECT_EQ(lenet.params(), ref.params());  // He normal on every layer, from the same seed
    EXPECT_EQ(lenet.name().rfind("lenet5_he_keras_3_", 0), 0u) << lenet.name();

    const minicnn::Sequential cifar = parse(keras_file("cifar_dropout_keras3.json"), {32, 32, 3});
    EXPECT_EQ(cifar.name().rfind("cifar_dropout_keras_3_", 0), 0u) << cifar.name();
    EXPECT_EQ(cifar.spec(),
              "input 32,32,3\n"
              "Conv2D filters=8 kernel=3x3 stride=1x1 padding=same activation=relu\n"
              "MaxPooling2D pool=2x2 stride=2x2\n"
              "Conv2D filters=16 kernel=3x3 stride=1x1 padding=same activation=relu\n"
              "MaxPooling2D pool=2x2 stride=2x2\n"
              "Dropout rate=0.25\n"
              "Flatten\n"
              "Dense units=32 activation=relu\n"
              "Dropout rate=0.5\n"
              "Dense units=10 activation=softmax\n");
    EXPECT_EQ(cifar.param_count(), 34522);
    const std::string s = cifar.summary();
    for (const char* row : {"dropout (Dropout)", "dropout_1 (Dropout)", "(None, 8, 8, 16)"})
        EXPECT_NE(s.find(row), std::string::npos) << row << " in\n" << s;
}

TEST(Keras, NotASequentialModelIsOneLine) {
    for (const std::string& text :
         {std::string("{\"class_name\": \"Functional\", \"config\": {}}"), std::string("[1, 2"),
          std::string("{\"class_name\": \"Sequential\", \"config\": {\"layers\": []}}")}) {
        const std::string e = error_of([&] { parse(text); });
        EXPECT_EQ(e.rfind("model.json: ", 0), 0u) << e;
        EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    }
}

}  // namespace
