// tests/synthetic_data.h — a small labelled data set for training tests: n 28x28 images of 10
// classes, class c a bright 7x7 square at one of ten places, plus uniform noise in [0, 0.25).
// The same seed gives the same images on every machine (mt19937). squares8: the same kind of set
// stored 8-bit, as data sets are (minicnn/idx.h), with its float32 copy scaled as training sees it.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "minicnn/detail/pixel.h"
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

struct Squares8 {
    std::vector<std::uint8_t> pixels;  // (n, 28, 28, 1)
    std::vector<float> unit;           // detail::pixel_to_unit(pixels): what the model sees
    std::vector<std::int32_t> y;       // (n)
    std::int64_t n = 0;
    DataView view() const {  // 8-bit
        DataView v;
        v.pixels = pixels.data();
        v.labels = y.data();
        v.n = n;
        return v;
    }
    DataView float_view() const { return {unit.data(), y.data(), n}; }
};

inline Squares8 squares8(std::int64_t n, unsigned seed) {
    Squares8 s;
    s.n = n;
    s.pixels.resize(static_cast<std::size_t>(n * 784));
    s.y.resize(static_cast<std::size_t>(n));
    std::mt19937 g(seed);
    for (std::int64_t i = 0; i < n; ++i) {
        const int c = int(g() % 10);
        s.y[std::size_t(i)] = c;
        const int r0 = 2 + (c / 5) * 13, c0 = 1 + (c % 5) * 5;
        for (int r = 0; r < 28; ++r)
            for (int q = 0; q < 28; ++q) {
                unsigned v = g() % 64;
                if (r >= r0 && r < r0 + 7 && q >= c0 && q < c0 + 7) v += 180;
                s.pixels[std::size_t(i * 784 + r * 28 + q)] = std::uint8_t(v);
            }
    }
    s.unit.resize(s.pixels.size());
    for (std::size_t k = 0; k < s.pixels.size(); ++k)
        s.unit[k] = detail::pixel_to_unit(s.pixels[k]);
    return s;
}

}  // namespace minicnn::test
