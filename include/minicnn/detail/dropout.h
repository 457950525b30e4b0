// minicnn/detail/dropout.h — dropout's drop decision, written once for the host and the device
// (counter-based: no state, no scratch, integer arithmetic only), so the CPU engine
// (host/cpu/dropout.cpp) and the CUDA engine (cuda/dropout.cu) drop exactly the same units.
//
// Element i of a Dropout layer's input (the i-th float of the batch (n, features...) in memory
// order, counted from the first sample of the global batch) at training step `step` (the number of
// steps taken before it, StepCounters::step) is kept when
//
//   key  = mix64(mix64(mix64(seed ^ kSeedSalt) + layer) + step)      one per layer and step
//   keep = (mix64(key + (i + 1) * kGamma) >> 32) >= threshold(rate)   splitmix64's output i
//
// with threshold(rate) = floor(rate * 2^32): a unit is dropped with probability threshold / 2^32,
// which is rate to within 2^-32. `layer` is the layer's index in its model, `seed` the run's seed
// (FitOptions::seed), so two Dropout layers, two steps or two runs draw independent masks. Tested
// in tests/test_dropout.cpp (rate, independence, CPU against CUDA bit for bit).
#pragma once

#include <cmath>
#include <cstdint>

#include "minicnn/detail/mix64.h"

namespace minicnn::detail {

constexpr std::uint64_t kDropoutSeedSalt = 0xD6E8FEB86659FD93ull;
constexpr std::uint64_t kDropoutGamma = 0x9E3779B97F4A7C15ull;  // splitmix64's increment

// The key of one layer's draws at one step.
MINICNN_HD inline std::uint64_t dropout_key(std::uint64_t seed, std::uint64_t layer,
                                            std::uint64_t step) {
    return mix64(mix64(mix64(seed ^ kDropoutSeedSalt) + layer) + step);
}

// Whether element i is kept, for a key of dropout_key and a threshold of dropout_threshold.
MINICNN_HD inline bool dropout_keep(std::uint64_t key, std::uint64_t i, std::uint32_t threshold) {
    return std::uint32_t(mix64(key + (i + 1) * kDropoutGamma) >> 32) >= threshold;
}

// floor(rate * 2^32) for rate in [0, 1) (host side, once per launch).
inline std::uint32_t dropout_threshold(float rate) {
    return std::uint32_t(std::floor(double(rate) * 4294967296.0));
}

// The factor kept units are scaled by, 1 / (1 - rate), rounded once to float (host side).
inline float dropout_scale(float rate) {
    return float(1.0 / (1.0 - double(rate)));
}

}  // namespace minicnn::detail
