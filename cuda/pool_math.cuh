// cuda/pool_math.cuh — the max-pooling window scan as a device function, the one definition of the
// first-maximum rule on the GPU: cuda/pool2d.cu (max pooling) and, through pool_tile, the fused
// max-pooling epilogue of the forward kernels (cuda/conv2d.cu, cuda/conv2d_strip.cu:
// conv2d_maxpool_forward). CPU twin: host/cpu/pool2d.cpp.
//
//   best = the window's maximum; pos = a*kw + q of its FIRST occurrence in row-major window order:
//   start from cell (0, 0), replace only on strict > (so a NaN in cell (0, 0) stays the result,
//   and masks compare exactly with the CPU's).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "activation_math.cuh"
#include "minicnn/geometry.h"

namespace minicnn::cuda {

// Cell (a, q) of the window is base[a * row_stride + q * col_stride].
__device__ inline void window_max(const float* base, std::int64_t row_stride,
                                  std::int64_t col_stride, int kh, int kw, float& best,
                                  std::int32_t& pos) {
    best = base[0];
    pos = 0;
    for (int a = 0; a < kh; ++a) {
        for (int q = 0; q < kw; ++q) {
            const float v = base[a * row_stride + q * col_stride];
            if (v > best) {
                best = v;
                pos = a * kw + q;
            }
        }
    }
}

// The max-pooling epilogue of both forward kernels (conv2d_maxpool_forward), once the block's
// activations a_s (TH * TW pixels, KG channels) are in shared memory and visible to every thread:
// each (pooled pixel, channel) of the tile takes its window's first maximum there (window_max). The
// host checked that the tile is whole windows (TH % pg.sh == 0, pg.kh <= pg.sh, and likewise
// across), so no window straddles two blocks. Threads tid, tid + nthreads, ... share the work.
template <int TH, int TW, int KG>
__device__ void pool_tile(float* __restrict__ pooled, std::int32_t* __restrict__ mask,
                          const float* a_s, const PoolGeom& pg, std::int64_t bimg, int oy0, int ox0,
                          int k0, int K, int tid, int nthreads) {
    const int psh = pg.sh, psw = pg.sw;
    const int pth = TH / psh, ptw = TW / psw;  // pooled pixels of the tile
    const int pi0 = oy0 / psh, pj0 = ox0 / psw;
    const int POH = int(pg.oh), POW = int(pg.ow);
    float* pimg = pooled + bimg * (std::int64_t(POH) * POW * K);  // (poh, pow, k)
    std::int32_t* mimg = mask ? mask + bimg * (std::int64_t(POH) * POW * K) : nullptr;
    for (int e = tid; e < pth * ptw * KG; e += nthreads) {
        const int k2 = e % KG, pp = e / KG;
        const int pi = pp / ptw, pj = pp % ptw;
        if (pi0 + pi >= POH || pj0 + pj >= POW || k0 + k2 >= K) continue;
        float best;
        std::int32_t pos;
        window_max(a_s + (pi * psh * TW + pj * psw) * KG + k2, TW * KG, KG, pg.kh, pg.kw, best,
                   pos);
        const int o = ((pi0 + pi) * POW + pj0 + pj) * K + k0 + k2;
        pimg[o] = best;
        if (mimg) mimg[o] = pos;
    }
}

// The max-pooling backward of one pooled element, with act' folded in, as the unpooling epilogues
// write it (conv2d_backward_data_unpool in cuda/conv2d_strip.cu, dense::backward_unpool in
// cuda/dense.cu): what maxpool2d_backward_mask with dout_act gives, for windows that do not
// overlap. Pooled pixel (py, px), channel ch of pooling p owns the cells [py*sh, (py+1)*sh) x
// [px*sw, (px+1)*sw) of its input z (the last row and column of pooled pixels also the cells past
// them, which no window reaches); the cell `pos` names gets 0 + act'(pooled) * grad, every other
// one 0. zimg is z's image (h, w, c).
__device__ inline void unpool_store(float* zimg, const PoolGeom& p, int py, int px, int ch,
                                    float grad, float pooled, Activation act, int pos) {
    const int ZH = int(p.h), ZW = int(p.w), C = int(p.c);
    const float v = 0.0f + act_backward(grad, pooled, act);
    const int y_lo = py * p.sh, y_hi = py + 1 == int(p.oh) ? ZH : min(ZH, y_lo + p.sh);
    const int x_lo = px * p.sw, x_hi = px + 1 == int(p.ow) ? ZW : min(ZW, x_lo + p.sw);
    for (int y = y_lo; y < y_hi; ++y) {
        for (int x = x_lo; x < x_hi; ++x) {
            const int a = y - y_lo, q = x - x_lo;
            zimg[(y * ZW + x) * C + ch] = a < p.kh && q < p.kw && a * p.kw + q == pos ? v : 0.0f;
        }
    }
}

}  // namespace minicnn::cuda
