// tests/test_dense.cpp — the chained forward of cuda/dense.cu (cuda::dense::forward_chain: a run of
// dense layers in one launch) against one cuda::dense::forward per layer, bit for bit (the same
// row kernel, one layer at a time), and against a float64 evaluation on the host within a
// worst-case bound: LeNet's three layers at batch 256 and at an odd batch (37, a half-full last
// block), four layers with every elementwise activation, one layer; what one launch cannot run is
// refused.
// The dense layers' forward and backward through the engines: tests/test_engine_cuda.cpp.
// Without a GPU every test skips and says why.
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cuda_test_util.h"
#include "minicnn/activation.h"
#include "minicnn/error.h"
#include "test_util.h"
#ifdef MINICNN_WITH_CUDA
#include "dense.h"
#endif

namespace minicnn {
namespace {

#ifdef MINICNN_WITH_CUDA

class CudaDense : public ::testing::Test {
protected:
    void SetUp() override {
        MINICNN_SKIP_WITHOUT_GPU();
        ctx_ = std::make_unique<cuda::Context>(0);
    }
    std::unique_ptr<cuda::Context> ctx_;
};

struct LayerSpec {
    std::int64_t n_out;
    Activation act;
};

// forward_chain over layers `specs` (input width n_in, batch n) against one forward per layer on
// the same device, bit for bit (outputs poisoned with NaN first), and the last layer against a
// float64 evaluation of each layer on the host (the GPU's own previous outputs as its input, so
// only that layer's float32 rounding is measured, within a deterministic worst-case bound).
void expect_chain_matches(cuda::Context& ctx, std::int64_t n, std::int64_t n_in,
                          const std::vector<LayerSpec>& specs, std::uint32_t seed) {
    const cudaStream_t s = ctx.stream();
    const auto x = test::random_vector<float>(std::size_t(n * n_in), seed);
    auto d_x = test::to_device(x, s);
    std::vector<cuda::DeviceBuffer<float>> w, b, chained, single;
    std::vector<cuda::dense::ChainLayer> chain;
    std::int64_t width = n_in;
    for (std::size_t l = 0; l < specs.size(); ++l) {
        const LayerSpec& sp = specs[l];
        w.push_back(test::to_device(
            test::random_vector<float>(std::size_t(width * sp.n_out), seed + 1 + 2 * l), s));
        b.push_back(test::to_device(
            test::random_vector<float>(std::size_t(sp.n_out), seed + 2 + 2 * l), s));
        const std::vector<float> nan(std::size_t(n * sp.n_out), std::nanf(""));
        chained.push_back(test::to_device(nan, s));
        single.push_back(test::to_device(nan, s));
        width = sp.n_out;
    }
    width = n_in;
    for (std::size_t l = 0; l < specs.size(); ++l) {
        chain.push_back(
            {w[l].data(), b[l].data(), chained[l].data(), width, specs[l].n_out, specs[l].act});
        width = specs[l].n_out;
    }
    ASSERT_EQ(cuda::dense::chain_unfusable(chain.data(), int(chain.size())), "");
    cuda::dense::forward_chain(d_x.data(), chain.data(), int(chain.size()), n, s);
    const float* in = d_x.data();
    width = n_in;
    for (std::size_t l = 0; l < specs.size(); ++l) {
        cuda::dense::forward(single[l].data(), in, w[l].data(), b[l].data(), n, width,
                             specs[l].n_out, specs[l].act, ctx);
        in = single[l].data();
        width = specs[l].n_out;
    }
    width = n_in;
    std::vector<float> prev = x;
    for (std::size_t l = 0; l < specs.size(); ++l) {
        const std::vector<float> got = test::to_host(chained[l], s);
        // Exact under FMA: forward() runs such a layer by the same row kernel (cuda/dense.cu), so
        // both sides are the same compiled code on the same inputs.
        EXPECT_TRUE(test::all_equal(got, test::to_host(single[l], s), {n, specs[l].n_out}))
            << "layer " << l << " (" << activation_name(specs[l].act) << ")";
        // The host reference of this layer from the GPU's previous output.
        const std::vector<float> wl = test::to_host(w[l], s), bl = test::to_host(b[l], s);
        const std::int64_t no = specs[l].n_out;
        std::vector<double> ref(std::size_t(n * no)), bound(std::size_t(n * no));
        for (std::int64_t r = 0; r < n; ++r) {
            double mx = -INFINITY, row_bound = 0;
            for (std::int64_t j = 0; j < no; ++j) {
                double z = bl[std::size_t(j)], mag = std::fabs(bl[std::size_t(j)]);
                for (std::int64_t i = 0; i < width; ++i) {
                    const double t =
                        double(prev[std::size_t(r * width + i)]) * wl[std::size_t(i * no + j)];
                    z += t;
                    mag += std::fabs(t);
                }
                ref[std::size_t(r * no + j)] = z;
                mx = std::max(mx, z);
                // Worst-case error of a float32 sum of width + 1 terms in any order, with or
                // without FMA (Higham, Theorem 3.1/3.5: gamma_L sum |terms|, gamma_L = L u / (1 -
                // L u), u = 2^-24), plus the activation's rounding (a few u relative, below).
                const double L = double(width + 1), u = std::ldexp(1.0, -24);
                bound[std::size_t(r * no + j)] = L * u / (1 - L * u) * mag;
                row_bound = std::max(row_bound, bound[std::size_t(r * no + j)]);
            }
            // relu, tanh and sigmoid are 1-Lipschitz; a softmax output moves by at most
            // 2 p_j (1 - p_j) max_k |dz_k| <= max_k |dz_k| / 2 <= the row's largest bound.
            if (specs[l].act == Activation::softmax)
                for (std::int64_t j = 0; j < no; ++j) bound[std::size_t(r * no + j)] = row_bound;
            double sum = 0;
            for (std::int64_t j = 0; j < no; ++j) {
                double& v = ref[std::size_t(r * no + j)];
                switch (specs[l].act) {
                    case Activation::relu:
                        v = v > 0 ? v : 0;
                        break;
                    case Activation::tanh:
                        v = std::tanh(v);
                        break;
                    case Activation::sigmoid:
                        v = 1 / (1 + std::exp(-v));
                        break;
                    case Activation::softmax:
                        v = std::exp(v - mx);
                        sum += v;
                        break;
                    case Activation::linear:
                        break;
                }
            }
            if (specs[l].act == Activation::softmax)
                for (std::int64_t j = 0; j < no; ++j) ref[std::size_t(r * no + j)] /= sum;
        }
        // A deterministic worst-case bound per element (above), so the comparison can never fail
        // by chance: its inputs are the GPU's own previous outputs (earlier layers' rounding does
        // not count), plus 8 u relative for the bias add, the activation's own rounding
        // (expf/tanhf within a few ulps) and the softmax division. An indexing error moves an
        // output by the size of a whole term sum, far beyond it.
        for (std::size_t e = 0; e < got.size(); ++e) {
            const double tol = bound[e] + 8 * std::ldexp(1.0, -24) * std::fabs(ref[e]) + 1e-30;
            if (!(std::fabs(double(got[e]) - ref[e]) <= tol)) {
                ADD_FAILURE() << "layer " << l << " against the host: element " << e << " got "
                              << got[e] << ", expected " << ref[e] << " within " << tol;
                break;
            }
        }
        prev = got;
        width = no;
    }
}

TEST_F(CudaDense, ForwardChainIsBitIdenticalToOneForwardPerLayer) {
    const std::vector<LayerSpec> lenet = {
        {120, Activation::relu}, {84, Activation::relu}, {10, Activation::softmax}};
    expect_chain_matches(*ctx_, 256, 400, lenet, 10);  // LeNet-5's dense layers at batch 256
    expect_chain_matches(*ctx_, 37, 400, lenet, 20);   // a partial row tile
    expect_chain_matches(*ctx_, 70, 33,
                         {{65, Activation::tanh},
                          {31, Activation::sigmoid},
                          {40, Activation::linear},
                          {32, Activation::softmax}},
                         30);  // four layers, partial column tiles, the widest one-tile softmax
    expect_chain_matches(*ctx_, 5, 7, {{3, Activation::relu}}, 40);  // one layer
}

TEST_F(CudaDense, ForwardChainRefusesWhatOneLaunchCannotRun) {
    using cuda::dense::ChainLayer;
    const std::vector<ChainLayer> wide_softmax = {
        {nullptr, nullptr, nullptr, 8, 33, Activation::softmax}};
    EXPECT_NE(cuda::dense::chain_unfusable(wide_softmax.data(), 1), "");
    const std::vector<ChainLayer> mismatch = {{nullptr, nullptr, nullptr, 8, 16, Activation::relu},
                                              {nullptr, nullptr, nullptr, 15, 4, Activation::relu}};
    const std::string why = cuda::dense::chain_unfusable(mismatch.data(), 2);
    EXPECT_NE(why.find("takes 15 inputs"), std::string::npos) << why;
    EXPECT_NE(cuda::dense::chain_unfusable(mismatch.data(), 0), "");
    EXPECT_NE(cuda::dense::chain_unfusable(mismatch.data(), cuda::dense::kMaxChain + 1), "");
    EXPECT_THROW(cuda::dense::forward_chain(nullptr, mismatch.data(), 2, 4, ctx_->stream()),
                 ArgumentError);
}

#else

TEST(CudaDense, ForwardChainIsBitIdenticalToOneForwardPerLayer) {
    GTEST_SKIP() << "GPU test skipped: this build has no CUDA backend";
}

#endif

}  // namespace
}  // namespace minicnn
