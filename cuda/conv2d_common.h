// cuda/conv2d_common.h — what the convolution's two kernel files (cuda/conv2d.cu: forward and
// backward data; cuda/conv2d_filter.cu: backward filter) share: the block size and the launchers'
// argument checks beyond check_geometry (minicnn/geometry.h) (defined in cuda/conv2d.cu; the
// max-pooling backward of cuda/pool2d.cu uses check_dout_act as well).
#pragma once

#include <cstdint>

#include "minicnn/geometry.h"
#include "minicnn/ops.h"

namespace minicnn::cuda::conv {

constexpr int kThreads = 256;

// The activation folded into dout: linear, relu, tanh or sigmoid, with its forward output given.
void check_dout_act(const float* dout_a, Activation act, const char* op);
// ArgumentError unless the grid fits one launch (x < 2^31, y <= 65535).
void check_grid(std::int64_t x, std::int64_t y, const char* op);

}  // namespace minicnn::cuda::conv
