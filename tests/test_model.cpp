// tests/test_model.cpp — Sequential and lenet5(): the architecture of docs/training.md (shapes and 61,706
// parameters), the Keras-like summary, He-normal initialisation (seeded, truncated, zero biases),
// the spec round trip used by checkpoints, and shape errors that name the layer.
#include <cmath>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "minicnn/error.h"
#include "minicnn/model.h"

namespace minicnn {
namespace {

TEST(Lenet5, HasTheSpecArchitectureAnd61706Parameters) {
    const Sequential m = lenet5();
    ASSERT_EQ(m.size(), 8u);
    EXPECT_EQ(m.param_count(), 61706);
    const Shape shapes[] = {{28, 28, 6}, {14, 14, 6}, {10, 10, 16}, {5, 5, 16},
                            {400},       {120},       {84},         {10}};
    const std::int64_t params[] = {156, 0, 2416, 0, 0, 48120, 10164, 850};
    for (std::size_t i = 0; i < m.size(); ++i) {
        EXPECT_EQ(m.layer(i).output_shape(), shapes[i]) << "layer " << i;
        EXPECT_EQ(m.layer(i).param_count(), params[i]) << "layer " << i;
    }
    EXPECT_EQ(m.layer(0).activation(), Activation::relu);
    EXPECT_EQ(m.layer(7).activation(), Activation::softmax);
}

TEST(Lenet5, SummaryPrintsLayersShapesAndTotals) {
    const std::string s = lenet5().summary();
    EXPECT_NE(s.find("Model: \"lenet5\""), std::string::npos) << s;
    EXPECT_NE(s.find("conv2d (Conv2D)"), std::string::npos) << s;
    EXPECT_NE(s.find("(None, 28, 28, 6)"), std::string::npos) << s;
    EXPECT_NE(s.find("max_pooling2d_1 (MaxPooling2D)"), std::string::npos) << s;
    EXPECT_NE(s.find("dense_2 (Dense)"), std::string::npos) << s;
    EXPECT_NE(s.find("48,120"), std::string::npos) << s;
    EXPECT_NE(s.find("Total params: 61,706"), std::string::npos) << s;
    EXPECT_NE(s.find("Trainable params: 61,706"), std::string::npos) << s;
    // Columns stay apart: the longest "name (Type)" is followed by a gap before its shape, and
    // every shape starts in the same column.
    EXPECT_NE(s.find("max_pooling2d_1 (MaxPooling2D) "), std::string::npos) << s;
    EXPECT_EQ(s.find(")(None"), std::string::npos) << s;
    std::size_t col = std::string::npos;
    std::istringstream lines(s);
    for (std::string line; std::getline(lines, line);) {
        const std::size_t at = line.find("(None");
        if (at == std::string::npos) continue;
        if (col == std::string::npos) col = at;
        EXPECT_EQ(at, col) << line;
    }
}

TEST(Init, SameSeedSameWeightsAndHeNormalTruncatedAtTwoStddev) {
    const Sequential a = lenet5(3), b = lenet5(3), c = lenet5(4);
    EXPECT_EQ(a.params(), b.params());
    EXPECT_NE(a.params(), c.params());
    // Dense 400 -> 120: stddev sqrt(2/400); truncation keeps every weight within 2 stddev, and the
    // sample stddev of a normal truncated at 2 sigma is about 0.88 sigma.
    const std::int64_t off = a.param_offset(5);
    const double sd = std::sqrt(2.0 / 400.0);
    double sum = 0, sq = 0, maxabs = 0;
    for (std::int64_t i = 0; i < 48000; ++i) {
        const double v = a.params()[static_cast<std::size_t>(off + i)];
        sum += v;
        sq += v * v;
        maxabs = std::max(maxabs, std::fabs(v));
    }
    EXPECT_LE(maxabs, 2 * sd + 1e-7);
    EXPECT_GT(maxabs, 1.9 * sd);
    EXPECT_NEAR(sum / 48000, 0.0, 0.01 * sd);
    EXPECT_NEAR(std::sqrt(sq / 48000) / sd, 0.88, 0.02);
    for (std::int64_t i = 48000; i < 48120; ++i)
        EXPECT_EQ(a.params()[static_cast<std::size_t>(off + i)], 0.0f);
}

TEST(Sequential, SpecRoundTripRebuildsTheArchitecture) {
    Sequential m({12, 10, 2}, "small");
    m.conv2d(3, {3, 2}, Padding::explicit_pad(1, 2), Activation::tanh, {2, 1})
        .avgpool2d({2, 2}, {1, 1})
        .maxpool2d({2, 2})
        .flatten()
        .dense(7, Activation::sigmoid)
        .activation(Activation::linear)
        .dense(4, Activation::softmax);
    const Sequential r = Sequential::from_spec(m.spec(), "small");
    EXPECT_EQ(r.spec(), m.spec());
    EXPECT_EQ(r.param_count(), m.param_count());
    EXPECT_EQ(r.output_shape(), m.output_shape());
    EXPECT_EQ(Sequential::from_spec(lenet5().spec()).spec(), lenet5().spec());
}

TEST(Sequential, ShapeErrorsNameTheLayer) {
    Sequential m({28, 28, 1});
    m.conv2d(4, {3, 3});
    try {
        m.dense(10);
        FAIL() << "Dense on a (26, 26, 4) input must be refused";
    } catch (const ArgumentError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("layer 1 (Dense)"), std::string::npos) << msg;
        EXPECT_NE(msg.find("Flatten"), std::string::npos) << msg;
    }
    EXPECT_THROW(m.conv2d(4, {40, 40}, Padding::valid()), ArgumentError);
    EXPECT_THROW(m.conv2d(0, {3, 3}), ArgumentError);
    EXPECT_THROW(Sequential::from_spec("input 28,28,1\nConv2D filters=x"), ArgumentError);
    EXPECT_THROW(Sequential::from_spec("input 28,28,1\nLSTM units=3"), ArgumentError);
    EXPECT_EQ(format_thousands(61706), "61,706");
    EXPECT_EQ(format_thousands(0), "0");
    EXPECT_EQ(format_thousands(1000000), "1,000,000");
}

}  // namespace
}  // namespace minicnn
