// minicnn/detail/pixel.h — the one expression that turns a stored 8-bit pixel into the float the
// model sees, written once for the host and the device.
//
// Data sets stay 8-bit in memory (minicnn/idx.h: Dataset::pixels), on the host and on a GPU, and
// are scaled to [0, 1] as a batch is gathered: the CPU engine's gather (host/cpu/train_kernels.cpp)
// and the CUDA gather kernel (cuda/train_kernels.cu) both call pixel_to_unit, so they give the
// same bits (a float division by 255 is correctly rounded on both; nvcc keeps IEEE division unless
// -prec-div=false or --use_fast_math, which minicnn does not use).
#pragma once

#include <cstdint>

#include "minicnn/detail/permutation.h"  // MINICNN_HD

namespace minicnn::detail {

MINICNN_HD inline float pixel_to_unit(std::uint8_t v) {
    return float(v) / 255.0f;
}

}  // namespace minicnn::detail
