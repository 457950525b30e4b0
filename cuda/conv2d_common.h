// cuda/conv2d_common.h — what the convolution's three kernel files (cuda/conv2d.cu: forward and
// backward data; cuda/conv2d_strip.cu: the stride-1 strip kernel both of those use for LeNet's
// shapes; cuda/conv2d_filter.cu: backward filter) share: the block size, the shared-memory budget
// and its chunking, the forward tile choice, the strip kernel's launcher, and the launchers'
// argument checks beyond check_geometry (minicnn/geometry.h) (defined in cuda/conv2d.cu; the
// max-pooling backward of cuda/pool2d.cu uses check_dout_act as well).
#pragma once

#include <algorithm>
#include <cstdint>

#include <cuda_runtime.h>

#include "minicnn/activation.h"
#include "minicnn/geometry.h"

namespace minicnn::cuda::conv {

constexpr int kThreads = 256;

// Shared memory per block for the staged chunk: 32 KiB, below the 48 KiB that needs no opt-in, and
// small enough for several resident blocks per SM. A constant (not a device query) so that the
// chunking, and with it the summation order, is the same on every GPU.
constexpr int kSmemFloats = 8192;

// The activation folded into dout: linear, relu, tanh or sigmoid, with its forward output given.
void check_dout_act(const float* dout_a, Activation act, const char* op);
// ArgumentError unless the grid fits one launch (x < 2^31, y <= 65535).
void check_grid(std::int64_t x, std::int64_t y, const char* op);

// Chunk sizes of the (kernel row, kernel column, channel) reduction such that
// halo(AR, AQ, CC) + AR*AQ*CC*G floats fit in kSmemFloats. `halo` gives the staged-tile floats.
struct Chunks {
    int ar, aq, cc;
};

template <class HaloFloats>
Chunks choose_chunks(int kh, int kw, std::int64_t channels, int group, HaloFloats halo) {
    auto fits = [&](int ar, int aq, std::int64_t cc) {
        return halo(ar, aq, cc) + std::int64_t(ar) * aq * cc * group <= kSmemFloats;
    };
    // Largest channel chunk with the whole kernel (at most 64 channels at a time), split evenly.
    std::int64_t cmax = 0;
    for (std::int64_t cc = std::min<std::int64_t>(channels, 64); cc >= 1; --cc)
        if (fits(kh, kw, cc)) {
            cmax = cc;
            break;
        }
    if (cmax > 0) {
        const std::int64_t chunks = (channels + cmax - 1) / cmax;
        return {kh, kw, int((channels + chunks - 1) / chunks)};
    }
    // A large kernel: one channel at a time, as many whole kernel rows as fit ...
    for (int ar = kh - 1; ar >= 1; --ar)
        if (fits(ar, kw, 1)) return {ar, kw, 1};
    // ... or, for a very wide one, part of a row. (1, 1, 1) always fits.
    for (int aq = kw - 1; aq >= 1; --aq)
        if (fits(1, aq, 1)) return {1, aq, 1};
    return {1, 1, 1};
}

// Which image and tile a block owns (the forward kernels: a tile of the output; backward data: of
// the input): blockIdx.x folds (image, tile row, tile column) over th x tw tiles of an oh x ow
// plane (blockIdx.x may exceed 2^31 / tiles: the image is 64-bit). Computed once per block.
struct TileOrigin {
    std::int64_t image;
    int y0, x0;
};
__device__ inline TileOrigin tile_origin(int th, int tw, int oh, int ow) {
    const int tiles_w = (ow + tw - 1) / tw, tiles_h = (oh + th - 1) / th;
    const std::int64_t image = std::int64_t(blockIdx.x) / (std::int64_t(tiles_w) * tiles_h);
    const int t = int(std::int64_t(blockIdx.x) - image * tiles_w * tiles_h);
    return {image, (t / tiles_w) * th, (t % tiles_w) * tw};
}

// The forward kernel's tile for an output shape: TH x TW pixels x KG channels. The candidate whose
// tiles cover the fewest pixels beyond the output (LeNet: 28x28 by 14x14, 10x10 by 10x10: no
// waste), the larger tile on a tie.
struct ForwardTile {
    int th, tw, kg;
};

ForwardTile forward_tile(const ConvGeom& g);

// What the strip kernel computes (cuda/conv2d_strip.cu): a forward convolution, pooled or not, or
// (data) a stride-1 backward data pass written as the forward convolution of dout.
struct StripArgs {
    float* out;
    const float* inp;
    const float* inp_a;  // act' folded into the loads of inp (load_dz), or null
    Activation inp_act;
    const float* weight;
    const float* bias;  // null: none (and act linear)
    ConvGeom g;         // the forward convolution the kernel runs
    Activation act;
    float* pooled;  // null: out; else pooled and mask through the max-pooling epilogue
    std::int32_t* mask;
    PoolGeom pg;
    // data only: with unpool_mask not null, out is the gradient with respect to the pre-activation
    // of the layer before the max pooling `upg` that produced the convolution's input
    // (unpool_pooled, activation unpool_act): the unpooling epilogue.
    const std::int32_t* unpool_mask = nullptr;
    const float* unpool_pooled = nullptr;
    Activation unpool_act = Activation::linear;
    PoolGeom upg{};
    // Only say whether the kernel applies (launch_strip's answer), launching nothing.
    bool dry_run = false;
};

// Launches the strip kernel where it applies (stride 1, a 3- or 5-column kernel, the 14x14x8 and
// 10x10x16 tiles of forward_tile: LeNet's two convolutions, the kernel's columns in one chunk);
// false, with nothing launched, elsewhere. With s.dry_run, true where it would launch.
bool launch_strip(const StripArgs& s, bool data, cudaStream_t stream);

}  // namespace minicnn::cuda::conv
