// tests/synthetic_data.h — a small labelled data set for training tests: n 28x28 images of 10
// classes, class c a bright 7x7 square at one of ten places, plus uniform noise in [0, 0.25).
// The same seed gives the same images on every machine (mt19937).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "minicnn/trainer.h"

namespace minicnn::test {

struct Squares {
    std::vector<float> x;         // (n, 28, 28, 1)
    std::vector<std::int32_t> y;  // (n)
    std::int64_t n = 0;
    DataView view() const { return {x.data(), y.data(), n}; }
};

inline Squares squares(std::int64_t n, unsigned seed) {
    Squares s{std::vector<float>(static_cast<std::size_t>(n * 784)),
              std::vector<std::int32_t>(static_cast<std::size_t>(n)), n};
    std::mt19937 g(seed);
    for (std::int64_t i = 0; i < n; ++i) {
        const int c = int(g() % 10);
        s.y[std::size_t(i)] = c;
        const int r0 = 2 + (c / 5) * 13, c0 = 1 + (c % 5) * 5;
        for (int r = 0; r < 28; ++r)
            for (int q = 0; q < 28; ++q) {
                float v = float(g() % 1000) / 4000.0f;
                if (r >= r0 && r < r0 + 7 && q >= c0 && q < c0 + 7) v += 0.7f;
                s.x[std::size_t(i * 784 + r * 28 + q)] = v;
            }
    }
    return s;
}

}  // namespace minicnn::test
