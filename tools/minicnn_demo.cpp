// tools/minicnn_demo.cpp — runs the four operations of the exercise on LeNet-5's first layer shapes
// and prints the shapes and timings: a quick check that a build works, on the CPU or the GPU.
//
//   minicnn_demo [--device auto|cpu|cuda] [--batch M]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "minicnn/ops.h"

using namespace minicnn;

namespace {

Tensor random_tensor(Shape s, std::mt19937& rng, float scale) {
    Tensor t(std::move(s));
    std::normal_distribution<float> d(0.f, scale);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
    return t;
}

template <class F>
double time_ms(F&& f, int reps) {
    f();  // warm-up (and, on the GPU, context creation)
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) f();
    auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::milli>(t1 - t0).count() / reps;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        Device device = Device::auto_();
        long batch = 32;
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            if (a == "--device" && i + 1 < argc) {
                device = Device::parse(argv[++i]);
            } else if (a == "--batch" && i + 1 < argc) {
                char* end = nullptr;
                batch = std::strtol(argv[++i], &end, 10);
                if (!end || *end || batch <= 0 || batch > 100000) {
                    std::fprintf(stderr,
                                 "minicnn_demo: --batch must be a positive integer, got \"%s\"\n",
                                 argv[i]);
                    return 2;
                }
            } else if (a == "-h" || a == "--help") {
                std::printf("usage: minicnn_demo [--device auto|cpu|cuda] [--batch M]\n");
                return 0;
            } else {
                std::fprintf(stderr, "minicnn_demo: unknown argument \"%s\" (try --help)\n",
                             a.c_str());
                return 2;
            }
        }
        const Backend backend = resolve_backend(device);
        std::printf("minicnn demo: backend %s, batch %ld\n",
                    backend == Backend::cuda ? "cuda" : "cpu", batch);

        std::mt19937 rng(1);
        Tensor A_prev = random_tensor({batch, 28, 28, 1}, rng, 1.f);
        Tensor W = random_tensor({5, 5, 1, 6}, rng, 0.3f);
        Tensor b = random_tensor({1, 1, 1, 6}, rng, 0.1f);
        const int reps = 5;

        Tensor A;
        double t = time_ms(
            [&] {
                A = conv_forward(A_prev, W, b, Activation::relu, Padding::same(), {1, 1}, device);
            },
            reps);
        std::printf("conv_forward   A_prev %-16s W %-14s -> A %-16s %8.3f ms\n",
                    shape_str(A_prev.shape()).c_str(), shape_str(W.shape()).c_str(),
                    shape_str(A.shape()).c_str(), t);

        Tensor P;
        t = time_ms([&] { P = pool_forward(A, {2, 2}, {2, 2}, PoolMode::max, device); }, reps);
        std::printf("pool_forward   A %-21s max 2x2/2     -> %-20s %8.3f ms\n",
                    shape_str(A.shape()).c_str(), shape_str(P.shape()).c_str(), t);

        Tensor dP = random_tensor(P.shape(), rng, 1.f);
        Tensor dA;
        t = time_ms(
            [&] {
                dA = pool_backward(dP, A, {2, 2}, {2, 2}, PoolMode::max, MaxTie::all_ties, device);
            },
            reps);
        std::printf("pool_backward  dA %-20s               -> dA_prev %-14s %8.3f ms\n",
                    shape_str(dP.shape()).c_str(), shape_str(dA.shape()).c_str(), t);

        ConvGrads g;
        t = time_ms(
            [&] {
                g = conv_backward(dA, A_prev, W, b, Padding::same(), {1, 1}, device);
            },
            reps);
        std::printf("conv_backward  dZ %-20s -> dA_prev %s dW %s db %s %8.3f ms\n",
                    shape_str(dA.shape()).c_str(), shape_str(g.dA_prev.shape()).c_str(),
                    shape_str(g.dW.shape()).c_str(), shape_str(g.db.shape()).c_str(), t);
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "minicnn_demo: %s\n", e.what());
        return 1;
    }
}
