// tests/test_gradcheck.cpp — finite-difference gradient checks of the CPU backend in float64.
//
// For an operation y = f(x) and a fixed random projection G, the scalar loss L = <f(x), G> has
// dL/dx = backward(G). Each check compares the analytic backward pass with central differences
// (eps = 1e-6) of L and requires ||analytic - numeric|| / (||analytic|| + ||numeric||) < 1e-7:
//   - conv2d: dA_prev, dW and db, over 'same'/'valid'/explicit padding, strides 1-3, odd, even and
//     1x1 kernels, and through a fused activation (conv -> act, backward via activation_backward);
//   - pooling: avg, and max (both tie rules) on inputs without ties (values spaced 1e-2 apart, so a
//     perturbation never changes a window's maximum);
//   - activations, with inputs kept away from relu's kink at 0.
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "minicnn/cpu_backend.h"
#include "test_util.h"

namespace minicnn {
namespace {

using test::dot;
using test::numerical_gradient;
using test::random_vector;
using test::relative_error;

constexpr double kEps = 1e-6;
constexpr double kTol = 1e-7;

double norm(const std::vector<double>& v) {
    return std::sqrt(dot(v, v));
}

// Checks one analytic gradient against central differences, naming the gradient on failure.
void check_grad(const char* what, const std::vector<double>& analytic,
                const std::vector<double>& numeric) {
    ASSERT_EQ(analytic.size(), numeric.size()) << what;
    EXPECT_GT(norm(analytic), 1e-3)
        << what << ": the gradient is (nearly) zero, the check is vacuous";
    const double err = relative_error(analytic, numeric);
    EXPECT_LT(err, kTol) << what << ": relative error " << err << "\n"
                         << test::all_close(analytic, numeric, 0, 0).message();
}

ConvGeom conv_geom(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, std::int64_t k,
                   int kh, int kw, int sh, int sw, int ph, int pw) {
    ConvGeom g;
    g.n = n, g.h = h, g.w = w, g.c = c, g.k = k;
    g.kh = kh, g.kw = kw, g.sh = sh, g.sw = sw, g.ph = ph, g.pw = pw;
    g.oh = (h + 2 * ph - kh) / sh + 1;
    g.ow = (w + 2 * pw - kw) / sw + 1;
    return g;
}
int same_pad(std::int64_t in, int k, int s) {  // docs/operations.md: ceil(((in - 1) * s + k - in) / 2)
    return static_cast<int>(((in - 1) * s + k - in + 1) / 2);
}
ConvGeom same_geom(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, std::int64_t k,
                   int kh, int kw, int sh, int sw) {
    return conv_geom(n, h, w, c, k, kh, kw, sh, sw, same_pad(h, kh, sh), same_pad(w, kw, sw));
}

struct ConvCase {
    const char* name;
    ConvGeom g;
};

void PrintTo(const ConvCase& c, std::ostream* os) {
    *os << c.name;
}

class ConvGradcheck : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvGradcheck, DataFilterBiasMatchFiniteDifferences) {
    const ConvGeom g = GetParam().g;
    std::vector<double> x = random_vector<double>(g.in_numel(), 1);
    std::vector<double> w = random_vector<double>(g.weight_numel(), 2);
    std::vector<double> b = random_vector<double>(g.k, 3);
    const std::vector<double> G = random_vector<double>(g.out_numel(), 4);  // = dZ

    std::vector<double> z(g.out_numel());
    auto loss = [&] {
        cpu::conv2d_forward(z.data(), x.data(), w.data(), b.data(), g, Activation::linear);
        return dot(z, G);
    };
    std::vector<double> dx(g.in_numel()), dw(g.weight_numel()), db(g.k);
    cpu::conv2d_backward_data(dx.data(), G.data(), w.data(), g);
    cpu::conv2d_backward_filter(dw.data(), db.data(), G.data(), x.data(), g);

    check_grad("dA_prev", dx, numerical_gradient(loss, x, kEps));
    check_grad("dW", dw, numerical_gradient(loss, w, kEps));
    check_grad("db", db, numerical_gradient(loss, b, kEps));
}

INSTANTIATE_TEST_SUITE_P(
    CpuConv2d, ConvGradcheck,
    ::testing::Values(ConvCase{"valid3x3s1", conv_geom(2, 5, 6, 2, 3, 3, 3, 1, 1, 0, 0)},
                      ConvCase{"same5x5s1", same_geom(1, 6, 6, 2, 3, 5, 5, 1, 1)},
                      ConvCase{"same2x2s1_even", same_geom(2, 5, 4, 2, 2, 2, 2, 1, 1)},
                      ConvCase{"same4x3s1_even", same_geom(1, 5, 5, 2, 2, 4, 3, 1, 1)},
                      ConvCase{"same3x3s2", same_geom(2, 7, 6, 2, 3, 3, 3, 2, 2)},
                      ConvCase{"same2x2s2_even", same_geom(1, 6, 5, 3, 2, 2, 2, 2, 2)},
                      ConvCase{"same1x1s1_zero_pad", same_geom(2, 4, 3, 3, 2, 1, 1, 1, 1)},
                      ConvCase{"valid3x3s3_unreached", conv_geom(1, 7, 8, 2, 2, 3, 3, 3, 3, 0, 0)},
                      ConvCase{"explicit2x1_3x2_s2x1", conv_geom(1, 5, 4, 2, 3, 3, 2, 2, 1, 2, 1)}),
    [](const ::testing::TestParamInfo<ConvCase>& info) { return std::string(info.param.name); });

// conv -> activation: dZ = activation_backward(G, A), then the conv backward. Softmax runs over the
// channel axis k, so this also checks that the fused forward normalises over the right axis.
TEST(CpuConv2dGradcheck, ThroughFusedActivation) {
    const ConvGeom g = same_geom(2, 5, 5, 2, 4, 3, 3, 1, 1);
    for (Activation act : {Activation::tanh, Activation::sigmoid, Activation::softmax}) {
        SCOPED_TRACE(static_cast<int>(act));
        std::vector<double> x = random_vector<double>(g.in_numel(), 11);
        std::vector<double> w = random_vector<double>(g.weight_numel(), 12);
        std::vector<double> b = random_vector<double>(g.k, 13);
        const std::vector<double> G = random_vector<double>(g.out_numel(), 14);
        std::vector<double> a(g.out_numel());
        auto loss = [&] {
            cpu::conv2d_forward(a.data(), x.data(), w.data(), b.data(), g, act);
            return dot(a, G);
        };
        loss();  // a = forward output at the unperturbed point
        std::vector<double> dz(g.out_numel());
        cpu::activation_backward(dz.data(), G.data(), a.data(), g.n * g.oh * g.ow, g.k, act);
        std::vector<double> dx(g.in_numel()), dw(g.weight_numel()), db(g.k);
        cpu::conv2d_backward_data(dx.data(), dz.data(), w.data(), g);
        cpu::conv2d_backward_filter(dw.data(), db.data(), dz.data(), x.data(), g);
        check_grad("dA_prev", dx, numerical_gradient(loss, x, kEps));
        check_grad("dW", dw, numerical_gradient(loss, w, kEps));
        check_grad("db", db, numerical_gradient(loss, b, kEps));
    }
}

PoolGeom pool_geom(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, int kh, int kw,
                   int sh, int sw) {
    PoolGeom g;
    g.n = n, g.h = h, g.w = w, g.c = c;
    g.kh = kh, g.kw = kw, g.sh = sh, g.sw = sw;
    g.oh = (h - kh) / sh + 1;
    g.ow = (w - kw) / sw + 1;
    return g;
}

TEST(CpuPool2dGradcheck, AvgAndMaxWithoutTies) {
    const PoolGeom geoms[] = {
        pool_geom(2, 6, 6, 2, 2, 2, 2, 2),  // LeNet's pools
        pool_geom(1, 7, 6, 3, 3, 3, 2, 1),  // overlapping windows
        pool_geom(1, 8, 8, 2, 3, 3, 3, 3),  // an unreached row and column
        pool_geom(2, 5, 4, 1, 2, 3, 1, 1),  // rectangular window, maximal overlap
    };
    std::uint32_t seed = 30;
    for (const PoolGeom& g : geoms) {
        SCOPED_TRACE("pool " + std::to_string(g.kh) + "x" + std::to_string(g.kw) + " stride " +
                     std::to_string(g.sh) + "x" + std::to_string(g.sw));
        std::vector<double> x = test::distinct_vector<double>(g.in_numel(), seed++);
        const std::vector<double> G = random_vector<double>(g.out_numel(), seed++);
        std::vector<double> y(g.out_numel());

        auto avg_loss = [&] {
            cpu::avgpool2d_forward(y.data(), x.data(), g);
            return dot(y, G);
        };
        std::vector<double> dx(g.in_numel());
        cpu::avgpool2d_backward(dx.data(), G.data(), g);
        check_grad("avg dA_prev", dx, numerical_gradient(avg_loss, x, kEps));

        auto max_loss = [&] {
            cpu::maxpool2d_forward<double>(y.data(), nullptr, x.data(), g);
            return dot(y, G);
        };
        const std::vector<double> numeric = numerical_gradient(max_loss, x, kEps);
        std::vector<std::int32_t> mask(g.out_numel());
        cpu::maxpool2d_forward(y.data(), mask.data(), x.data(), g);
        cpu::maxpool2d_backward_mask(dx.data(), G.data(), mask.data(), g);
        check_grad("max (first-max mask) dA_prev", dx, numeric);
        cpu::maxpool2d_backward_allties(dx.data(), G.data(), x.data(), g);
        check_grad("max (all ties) dA_prev", dx, numeric);
    }
}

TEST(CpuActivationGradcheck, AllActivations) {
    const std::int64_t rows = 6, cols = 5;
    for (Activation act : {Activation::linear, Activation::relu, Activation::tanh,
                           Activation::sigmoid, Activation::softmax}) {
        SCOPED_TRACE(static_cast<int>(act));
        // Magnitudes in [0.05, 2] with random signs: far from relu's kink at 0.
        std::vector<double> x = random_vector<double>(rows * cols, 40, 0.05, 2.0);
        const std::vector<double> sign = random_vector<double>(rows * cols, 41);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = sign[i] < 0 ? -x[i] : x[i];
        const std::vector<double> G = random_vector<double>(rows * cols, 42);
        std::vector<double> y(x.size());
        auto loss = [&] {
            cpu::activation_forward(y.data(), x.data(), rows, cols, act);
            return dot(y, G);
        };
        loss();
        std::vector<double> dx(x.size());
        cpu::activation_backward(dx.data(), G.data(), y.data(), rows, cols, act);
        check_grad("dZ", dx, numerical_gradient(loss, x, kEps));
    }
}

}  // namespace
}  // namespace minicnn
