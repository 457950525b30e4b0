// host/cpu/conv_direct.h — the direct float convolution of the CPU backend (host/cpu/conv2d.cpp picks
// it): register-blocked kernels that read the (padded) image in place, with no im2col matrix and no
// GEMM call; AVX-512 (16 lanes, 32 registers) where the CPU has it, else AVX2 + FMA (8 lanes, 16
// registers): host/cpu/conv_direct_kernels.inc, compiled for each.
//
// The trick: for output row i and kernel row a, the kw * c inputs a pixel j reads are one contiguous
// run of the padded image row i*sh + a, starting at j*sw*c; consecutive pixels' runs overlap. So
//   forward          out[j, k] += sum_t row[j*sw*c + t] * Wa[t, k]          (t < kw*c, each a)
//   backward_filter  dWa[t, k] += sum_{i,j} row[j*sw*c + t] * dout[i, j, k]
// are GEMMs whose A matrix has rows sw*c apart (overlapping), which the micro-kernels walk directly:
// a tile of R pixels (forward) or R taps t (filter gradient) times one or two vectors of output
// channels (12 accumulators with AVX2, 24 with AVX-512). (A filter gradient with the taps in the
// lanes, a load per 2 FMAs instead of one per FMA, was measured slower on LeNet's second layer and
// is not kept.) Backward-data is the adjoint of the forward pass:
//   backward_data    dpad_row[j*sw*c + t] += sum_k dout[i, j, k] * Wa[t, k]
// a tile of R pixels from R different output rows (their runs never overlap) times one or two
// vectors of taps t, added into the padded image gradient, which is then cropped into dinp.
//
// One input channel with unit horizontal stride (LeNet's first layer: kw*c = 5 taps would fill a
// third of a vector) has kernels of its own that put consecutive output pixels in the lanes instead:
// forward, tiles of up to 2 vectors of pixels times a block of channels, transposed to NHWC through
// a small buffer (or, AVX-512 with a 2x2 max pooling after it, pooled in registers:
// forward_maxpool); filter gradient, dout transposed to (k, oh, ow) per image (or, after a 2x2
// stride-2 max pooling, expanded there in vectors from the pooling's gradient and mask, with no
// dout in between: backward_filter_unpool), tiles of taps times channels whose vectors are summed
// over a batch chunk's pixels (image by image) and then across their lanes.
//
// Each output element is summed in a fixed order (forward: a, then t; filter gradient: the chunk's
// images, then i, j; with one input channel per lane, then the lanes; data gradient: a, j, i, each
// a sum over k), so results do not depend on the thread count. They differ in rounding from the
// im2col + GEMM path (FMA, another order), within the tests' float tolerance.
#pragma once

#include <cstdint>

#include "minicnn/cpu_backend.h"

namespace minicnn::cpu::direct {

// The CPU has AVX2 and FMA and set_conv_method has not chosen im2col.
bool enabled();
// Lanes of the kernels that run (16 with AVX-512, 8 with AVX2, 0 when disabled).
int vector_lanes();
// "AVX-512", "AVX2", or "" when disabled.
const char* isa_name();
// Which passes the direct kernels run for this geometry (float only).
bool forward_fits(const ConvGeom& g);
bool backward_filter_fits(const ConvGeom& g);
bool backward_data_fits(const ConvGeom& g);

// Output channels rounded up to the kernels' vector (the packed layouts' row length).
std::int64_t lanes(std::int64_t k);
// Packed forward weights: (kh, kw*c, lanes(k)), zero in the padding lanes. Sized for 16 lanes, so
// that a workspace fits whichever kernels run.
inline std::int64_t packed_forward_size(const ConvGeom& g) {
    return std::int64_t(g.kh) * g.kw * g.c * ((g.k + 15) / 16 * 16);
}
// A filter gradient in the packed layout: (kh, kw*c, lanes(k)).
inline std::int64_t packed_filter_size(const ConvGeom& g) {
    return packed_forward_size(g);
}
// Packed backward-data weights: each kernel row transposed, (kh, k, lanes(kw*c)); sized for 16 lanes.
inline std::int64_t packed_backward_data_size(const ConvGeom& g) {
    return std::int64_t(g.kh) * g.k * ((std::int64_t(g.kw) * g.c + 15) / 16 * 16);
}
// Scratch for one zero-padded image or image gradient, with 16 floats of slack (floats).
std::int64_t pad_size(const ConvGeom& g);

void pack_forward(float* wp, const float* weight, const ConvGeom& g);
void pack_backward_data(float* wt, const float* weight, const ConvGeom& g);

// out (images, oh, ow, k) = conv(inp (images, h, w, c), packed weights) + bias (may be null); no
// activation. `pad`: pad_size(g) floats.
void forward(float* out, const float* inp, const float* wp, const float* bias, float* pad,
             std::int64_t images, const ConvGeom& g);
// A 2x2, stride-2 max pooling of this convolution's output, after a linear or ReLU activation,
// computed in registers (AVX-512, one input channel with unit horizontal stride: LeNet's first
// layer): forward_maxpool applies.
bool forward_maxpool_fits(const ConvGeom& g, Activation act, const PoolGeom& pool);
// One image: pooled (poh, pow, k) and mask (may be null) = max_pool(act(conv(inp) + bias)), as
// forward then activation_rows then maxpool2d_forward write them, bit for bit.
void forward_maxpool(float* pooled, std::int32_t* mask, const float* inp, const float* wp,
                     const float* bias, float* pad, Activation act, const ConvGeom& g,
                     const PoolGeom& pool);
// dinp (images, h, w, c) from dout (images, oh, ow, k) and pack_backward_data's weights.
void backward_data(float* dinp, const float* dout, const float* wt, float* pad,
                   std::int64_t images, const ConvGeom& g);
// dwp (packed_filter_size) = (accumulate ? dwp : 0) + the filter gradient of `images` images, and
// likewise db (k; may be null) with the bias gradient (each image's sum, then across images).
void backward_filter(float* dwp, float* db, bool accumulate, const float* dout, const float* inp,
                     float* pad, std::int64_t images, const ConvGeom& g);
// backward_filter on dout = maxpool2d_backward_mask(g2, mask) of the 2x2, stride-2 max pooling of
// this convolution's output, without that dout: the one-input-channel kernels expand their
// transposed dout from g2 and the mask directly. The same results, bit for bit.
bool backward_filter_unpool_fits(const ConvGeom& g, const PoolGeom& pool);
void backward_filter_unpool(float* dwp, float* db, bool accumulate, const float* g2,
                            const std::int32_t* mask, const float* inp, float* pad,
                            std::int64_t images, const ConvGeom& g, const PoolGeom& pool);
// dweight (kh, kw, c, k) = the packed gradient without its padding lanes.
void unpack_filter(float* dweight, const float* dwp, const ConvGeom& g);

}  // namespace minicnn::cpu::direct
