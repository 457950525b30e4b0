// tests/install/consumer.cpp — uses an installed minicnn (tests/install/run.sh): the version, one
// convolution checked against a hand-computed value, the LeNet-5 model and one training step on
// the CPU. Exits non-zero, saying why, when anything is off.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "minicnn/model.h"
#include "minicnn/ops.h"
#include "minicnn/trainer.h"
#include "minicnn/version.h"

int main() {
    using namespace minicnn;
    if (std::strcmp(version(), MINICNN_VERSION_STRING) != 0) {
        std::fprintf(stderr, "headers %s but library %s\n", MINICNN_VERSION_STRING, version());
        return 1;
    }
    // A 3x3 all-ones image, a 2x2 all-ones kernel, 'valid': every output is 4 + bias 0.5.
    Tensor x = Tensor::from<float>({1, 3, 3, 1}, std::vector<float>(9, 1.0f));
    Tensor w = Tensor::from<float>({2, 2, 1, 1}, std::vector<float>(4, 1.0f));
    Tensor b = Tensor::from<float>({1, 1, 1, 1}, std::vector<float>(1, 0.5f));
    Tensor z = conv_forward(x, w, b, Activation::linear, Padding::valid(), {1, 1}, Device::cpu());
    if (z.numel() != 4 || z.data<float>()[3] != 4.5f) {
        std::fprintf(stderr, "conv_forward gave a wrong result\n");
        return 1;
    }
    Sequential m = lenet5(1);
    if (m.param_count() != 61706) {
        std::fprintf(stderr, "lenet5 has %lld parameters\n", (long long)m.param_count());
        return 1;
    }
    Trainer t(m, Device::cpu());
    std::vector<float> images(8 * 784, 0.5f);
    std::vector<std::int32_t> labels{0, 1, 2, 3, 4, 5, 6, 7};
    const double loss = t.train_step(images.data(), labels.data(), 8, AdamConfig{});
    if (!std::isfinite(loss)) {
        std::fprintf(stderr, "train_step loss %f\n", loss);
        return 1;
    }
    std::printf("minicnn %s: conv_forward, lenet5 (61,706 parameters) and a training step (loss %.4f) "
                "from the installed library\n",
                version(), loss);
    return 0;
}
