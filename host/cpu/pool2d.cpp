// host/cpu/pool2d.cpp — 2-D pooling on the CPU (docs/operations.md "pool_forward", "pool_backward" and the
// training path's argmax masks), float and double: the CPU twin of cuda/pool2d.cu, used by the
// functional API and the training engine, and the oracle for the GPU kernels. No padding.
//
//   max forward       out[n,i,j,c]  = max_{a<kh, q<kw} inp[n, i*sh+a, j*sw+q, c]
//                     mask[n,i,j,c] = a*kw + q of the FIRST maximum in row-major window order
//                                     (strict >, darknet/cuDNN/PyTorch convention)
//   avg forward       out[n,i,j,c]  = sum_{a,q} inp[n, i*sh+a, j*sw+q, c] / (kh*kw)
//   backward (mask)       the window's gradient goes to the one cell its mask names
//   backward (all ties)   every cell equal to the window's maximum gets the window's full gradient
//                         (the exercise's rule; the maximum is recomputed from inp)
//   backward (avg)        every cell of the window gets dout / (kh*kw)
// In every backward pass overlapping windows add up, and rows/columns no window reaches get zero.
//
// Layouts: inp/dinp (n, h, w, c), out/dout/mask (n, oh, ow, c). c is contiguous, so every innermost
// loop runs over channels.
// Threads (the pool of host/cpu/thread_pool.h): forward passes split output rows (n, i) into fixed
// blocks; backward passes give one task per image n -> dinp[n, :, :, :], which it zeroes and then
// scatters into window by window in (i, j, a, q) order. No two tasks write the same element and
// every sum has a fixed order, so results do not depend on the thread count. LeNet's 2x2 window
// has its own branch-free paths (four candidates per channel in registers).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "minicnn/cpu_backend.h"
#include "minicnn/error.h"
#include "pool2d.h"
#include "simd_clones.h"
#include "thread_pool.h"

namespace minicnn::cpu {

namespace {

// A pointer the pass reads or writes must be non-null whenever there are elements behind it.
void require_ptr(const void* p, bool needed, const char* op, const char* name) {
    MINICNN_REQUIRE(p != nullptr || !needed, op << ": " << name << " is a null pointer");
}

// bad: a flat index into mask whose value lies outside [0, kh*kw), or -1.
void require_mask_value(std::int64_t bad, const std::int32_t* mask, const PoolGeom& g,
                        const char* op) {
    MINICNN_REQUIRE(bad < 0, op << ": mask values must lie in [0, " << g.kh * g.kw << ") for a "
                                << g.kh << "x" << g.kw << " window, found " << mask[bad]
                                << " at flat index " << bad);
}

// fn(bi) for every output row bi = n * oh + i, in fixed blocks of rows.
template <class F>
void for_rows(const PoolGeom& g, F&& fn) {
    const std::int64_t rows = g.n * g.oh;
    const std::int64_t work = g.out_numel() * g.kh * g.kw;
    const std::int64_t blocks =
        std::clamp<std::int64_t>(work / 32768, 1, std::min<std::int64_t>(64, rows));
    parallel_for(blocks, [&](std::int64_t b, int) {
        for (std::int64_t bi = rows * b / blocks; bi < rows * (b + 1) / blocks; ++bi) fn(bi);
    });
}

// fn(n) for every image, in fixed blocks of images.
template <class F>
void for_images(const PoolGeom& g, F&& fn) {
    const std::int64_t work = g.in_numel() + g.out_numel() * g.kh * g.kw;
    const std::int64_t blocks =
        std::clamp<std::int64_t>(work / 32768, 1, std::min<std::int64_t>(64, g.n));
    parallel_for(blocks, [&](std::int64_t b, int) {
        for (std::int64_t n = g.n * b / blocks; n < g.n * (b + 1) / blocks; ++n) fn(n);
    });
}

// LeNet's 2x2 window, with the channel count a compile-time constant CC where with_channels has
// one (0: the run-time g.c): the per-channel loops then unroll and vectorise for few channels (6,
// 16) instead of running their scalar remainder. Four candidates per channel in registers, no
// branches; `omp simd` says the pointers do not alias (GCC gave up on the run-time alias checks of
// eight pointers and ran these loops scalar, with a branch per comparison).
template <class F>
void with_channels(std::int64_t c, F&& f) {
    switch (c) {
        case 3: f(std::integral_constant<int, 3>{}); break;
        case 6: f(std::integral_constant<int, 6>{}); break;
        case 16: f(std::integral_constant<int, 16>{}); break;
        case 32: f(std::integral_constant<int, 32>{}); break;
        case 64: f(std::integral_constant<int, 64>{}); break;
        default: f(std::integral_constant<int, 0>{}); break;
    }
}

template <int CC, class T>
MINICNN_CLONES void maxpool2x2_row(T* out, std::int32_t* mask, const T* inp, const PoolGeom& g,
                                   std::int64_t bi) {
    const std::int64_t C = CC ? CC : g.c;
    const std::int64_t n = bi / g.oh, i = bi % g.oh, row = g.w * C;
    for (std::int64_t j = 0; j < g.ow; ++j) {
        const std::int64_t o = (bi * g.ow + j) * C;
        const T* __restrict p00 = inp + ((n * g.h + i * g.sh) * g.w + j * g.sw) * C;
        const T* __restrict p01 = p00 + C;
        const T* __restrict p10 = p00 + row;
        const T* __restrict p11 = p10 + C;
        T* __restrict best = out + o;
        if (mask == nullptr) {
#pragma omp simd
            for (std::int64_t c = 0; c < C; ++c) {
                T v = p00[c];
                v = p01[c] > v ? p01[c] : v;
                v = p10[c] > v ? p10[c] : v;
                v = p11[c] > v ? p11[c] : v;
                best[c] = v;
            }
            continue;
        }
        std::int32_t* __restrict arg = mask + o;
#pragma omp simd
        for (std::int64_t c = 0; c < C; ++c) {
            T v = p00[c];
            std::int32_t m = 0;
            m = p01[c] > v ? 1 : m;
            v = p01[c] > v ? p01[c] : v;
            m = p10[c] > v ? 2 : m;
            v = p10[c] > v ? p10[c] : v;
            m = p11[c] > v ? 3 : m;
            v = p11[c] > v ? p11[c] : v;
            best[c] = v;
            arg[c] = m;
        }
    }
}

// One output row bi (= n * oh + i) of max pooling; mask (may be null) gets the first maximum's
// window position: the window is walked in row-major order with a strict >.
template <class T>
MINICNN_CLONES void maxpool_row(T* out, std::int32_t* mask, const T* inp, const PoolGeom& g,
                                std::int64_t bi) {
    const std::int64_t n = bi / g.oh, i = bi % g.oh, C = g.c;
    if (g.kh == 2 && g.kw == 2) {
        with_channels(C, [&](auto cc) { maxpool2x2_row<decltype(cc)::value>(out, mask, inp, g, bi); });
        return;
    }
    for (std::int64_t j = 0; j < g.ow; ++j) {
        const std::int64_t o = (bi * g.ow + j) * C;
        const T* base = inp + ((n * g.h + i * g.sh) * g.w + j * g.sw) * C;
        T* best = out + o;
        std::copy(base, base + C, best);
        if (mask) std::fill(mask + o, mask + o + C, 0);
        for (int a = 0; a < g.kh; ++a) {
            for (int q = (a == 0 ? 1 : 0); q < g.kw; ++q) {
                const T* cell = base + (std::int64_t(a) * g.w + q) * C;
                const std::int32_t pos = a * g.kw + q;
                if (mask) {
                    std::int32_t* arg = mask + o;
                    for (std::int64_t c = 0; c < C; ++c) {
                        const bool gt = cell[c] > best[c];
                        best[c] = gt ? cell[c] : best[c];
                        arg[c] = gt ? pos : arg[c];
                    }
                } else {
                    for (std::int64_t c = 0; c < C; ++c)
                        best[c] = cell[c] > best[c] ? cell[c] : best[c];
                }
            }
        }
    }
}

template <class T>
MINICNN_CLONES void avgpool_row(T* out, const T* inp, const PoolGeom& g, std::int64_t bi) {
    const std::int64_t n = bi / g.oh, i = bi % g.oh, C = g.c;
    const T area = T(g.kh * g.kw);
    for (std::int64_t j = 0; j < g.ow; ++j) {
        T* o = out + (bi * g.ow + j) * C;
        const T* base = inp + ((n * g.h + i * g.sh) * g.w + j * g.sw) * C;
        std::fill(o, o + C, T(0));
        for (int a = 0; a < g.kh; ++a)
            for (int q = 0; q < g.kw; ++q) {
                const T* v = base + (std::int64_t(a) * g.w + q) * C;
                for (std::int64_t c = 0; c < C; ++c) o[c] += v[c];
            }
        for (std::int64_t c = 0; c < C; ++c) o[c] /= area;
    }
}

// Windows that tile the image (stride == window): every cell lies in at most one window, so a
// backward pass assigns each covered cell once (0 + its one contribution, as the zero-then-add of
// the general path) and zeroes only the cells no window covers.
bool tiles(const PoolGeom& g) {
    return g.sh == g.kh && g.sw == g.kw;
}

// Zeroes what the scatter of one image will not assign: everything, or (tiling windows) the rows
// and columns past the last window.
template <class T>
void zero_for_scatter(T* d, const PoolGeom& g) {
    const std::int64_t C = g.c;
    if (!tiles(g)) {
        std::fill(d, d + g.h * g.w * C, T(0));
        return;
    }
    const std::int64_t covered_h = g.oh * g.kh, covered_w = g.ow * g.kw;
    for (std::int64_t y = 0; y < covered_h; ++y)
        std::fill(d + (y * g.w + covered_w) * C, d + (y + 1) * g.w * C, T(0));
    std::fill(d + covered_h * g.w * C, d + g.h * g.w * C, T(0));
}

// v where keep, else +0, with a bit mask: written as `keep ? v : T(0)` four times over one mask
// value, GCC 12 reads the conditions as an if-else chain and emits branches and masked stores.
template <class T>
inline T keep_if(T v, bool keep) {
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    static_assert(sizeof(T) == sizeof(Bits), "float or double");
    Bits b;
    std::memcpy(&b, &v, sizeof b);
    b &= Bits(0) - Bits(keep);
    std::memcpy(&v, &b, sizeof b);
    return v;
}

// maxpool_backward_mask_image for 2x2 windows that tile the image (see maxpool2x2_row for CC):
// each cell is written once, 0 + the gradient when the mask names it (bit for bit the general
// path's zero-then-add). Returns false when a mask value lies outside [0, 4).
template <int CC, class T>
MINICNN_CLONES bool mask2x2_image(T* d, const T* dout, const std::int32_t* mask, const PoolGeom& g,
                                  std::int64_t n) {
    const std::int64_t C = CC ? CC : g.c, row = g.w * C;
    std::uint32_t bad = 0;
    for (std::int64_t i = 0; i < g.oh; ++i)
        for (std::int64_t j = 0; j < g.ow; ++j) {
            const std::int64_t o = ((n * g.oh + i) * g.ow + j) * C;
            const T* __restrict dz = dout + o;
            const std::int32_t* __restrict m = mask + o;
            T* __restrict d00 = d + (i * 2 * g.w + j * 2) * C;
            T* __restrict d01 = d00 + C;
            T* __restrict d10 = d00 + row;
            T* __restrict d11 = d10 + C;
#pragma omp simd reduction(|: bad)
            for (std::int64_t c = 0; c < C; ++c) {
                const std::int32_t pos = m[c];
                const T gr = T(0) + dz[c];  // 0 + g, as the general path's zero-then-add
                bad |= std::uint32_t(pos) > 3u;
                d00[c] = keep_if(gr, pos == 0);
                d01[c] = keep_if(gr, pos == 1);
                d10[c] = keep_if(gr, pos == 2);
                d11[c] = keep_if(gr, pos == 3);
            }
        }
    return bad == 0;
}

// One image of max-pool backward with the mask: returns the flat index (into mask) of the first
// value outside [0, kh*kw), or -1. offset[pos] is window position pos's offset from the window's
// first cell (no division per element).
// d: image n's gradient (h, w, c).
template <class T>
MINICNN_CLONES std::int64_t maxpool_backward_mask_image(T* d, const T* dout,
                                                        const std::int32_t* mask, const PoolGeom& g,
                                                        const std::int64_t* offset,
                                                        std::int64_t n) {
    const std::int64_t C = g.c, image = g.h * g.w * C;
    const std::int32_t area = g.kh * g.kw;
    if (g.kh == 2 && g.kw == 2 && tiles(g)) {
        bool ok = false;
        zero_for_scatter(d, g);
        with_channels(C, [&](auto cc) { ok = mask2x2_image<decltype(cc)::value>(d, dout, mask, g, n); });
        if (ok) return -1;  // else the loop below finds the first bad value
    }
    std::fill(d, d + image, T(0));
    for (std::int64_t i = 0; i < g.oh; ++i)
        for (std::int64_t j = 0; j < g.ow; ++j) {
            const std::int64_t o = ((n * g.oh + i) * g.ow + j) * C;
            T* win = d + (i * g.sh * g.w + j * g.sw) * C;
            for (std::int64_t c = 0; c < C; ++c) {
                const std::int32_t pos = mask[o + c];
                if (pos < 0 || pos >= area) return o + c;
                win[offset[pos] + c] += dout[o + c];
            }
        }
    return -1;
}

// maxpool_backward_allties_image's 2x2 window (see maxpool2x2_row for CC). assign: the windows
// tile the image, so each cell is written once (0 + its contribution, bit for bit the sum of the
// general path).
template <int CC, class T>
MINICNN_CLONES void allties2x2_image(T* d, const T* dout, const T* x, const PoolGeom& g,
                                     std::int64_t n, bool assign) {
    const std::int64_t C = CC ? CC : g.c, row = g.w * C;
    for (std::int64_t i = 0; i < g.oh; ++i)
        for (std::int64_t j = 0; j < g.ow; ++j) {
            const std::int64_t off = (i * g.sh * g.w + j * g.sw) * C;
            const T* __restrict dz = dout + ((n * g.oh + i) * g.ow + j) * C;
            const T* __restrict p00 = x + off;
            const T* __restrict p01 = p00 + C;
            const T* __restrict p10 = p00 + row;
            const T* __restrict p11 = p10 + C;
            T* __restrict d00 = d + off;
            T* __restrict d01 = d00 + C;
            T* __restrict d10 = d00 + row;
            T* __restrict d11 = d10 + C;
            if (assign) {
#pragma omp simd
                for (std::int64_t c = 0; c < C; ++c) {
                    T m = p00[c];
                    m = p01[c] > m ? p01[c] : m;
                    m = p10[c] > m ? p10[c] : m;
                    m = p11[c] > m ? p11[c] : m;
                    const T gr = T(0) + dz[c];  // 0 + g, as the general path's zero-then-add
                    d00[c] = p00[c] == m ? gr : T(0);
                    d01[c] = p01[c] == m ? gr : T(0);
                    d10[c] = p10[c] == m ? gr : T(0);
                    d11[c] = p11[c] == m ? gr : T(0);
                }
            } else {
#pragma omp simd
                for (std::int64_t c = 0; c < C; ++c) {
                    T m = p00[c];
                    m = p01[c] > m ? p01[c] : m;
                    m = p10[c] > m ? p10[c] : m;
                    m = p11[c] > m ? p11[c] : m;
                    const T gr = dz[c];
                    d00[c] += p00[c] == m ? gr : T(0);
                    d01[c] += p01[c] == m ? gr : T(0);
                    d10[c] += p10[c] == m ? gr : T(0);
                    d11[c] += p11[c] == m ? gr : T(0);
                }
            }
        }
}

// One image of max-pool backward by the exercise's rule: every cell equal to its window's maximum
// gets the window's full gradient.
template <class T>
MINICNN_CLONES void maxpool_backward_allties_image(T* dinp, const T* dout, const T* inp,
                                                   const PoolGeom& g, std::int64_t n, T* wmax) {
    const std::int64_t C = g.c, image = g.h * g.w * C;
    T* d = dinp + n * image;
    const T* x = inp + n * image;
    const bool assign = tiles(g);
    zero_for_scatter(d, g);
    if (g.kh == 2 && g.kw == 2) {
        with_channels(C, [&](auto cc) {
            allties2x2_image<decltype(cc)::value>(d, dout, x, g, n, assign);
        });
        return;
    }
    for (std::int64_t i = 0; i < g.oh; ++i)
        for (std::int64_t j = 0; j < g.ow; ++j) {
            const std::int64_t off = (i * g.sh * g.w + j * g.sw) * C;
            const T* dz = dout + ((n * g.oh + i) * g.ow + j) * C;
            const T* base = x + off;
            std::copy(base, base + C, wmax);
            for (int a = 0; a < g.kh; ++a)
                for (int q = 0; q < g.kw; ++q) {
                    const T* v = base + (std::int64_t(a) * g.w + q) * C;
                    for (std::int64_t c = 0; c < C; ++c) wmax[c] = v[c] > wmax[c] ? v[c] : wmax[c];
                }
            for (int a = 0; a < g.kh; ++a)
                for (int q = 0; q < g.kw; ++q) {
                    const std::int64_t cell = (std::int64_t(a) * g.w + q) * C;
                    const T* v = base + cell;
                    T* dd = d + off + cell;
                    if (assign) {
                        for (std::int64_t c = 0; c < C; ++c)
                            dd[c] = T(0) + (v[c] == wmax[c] ? dz[c] : T(0));
                    } else {
                        for (std::int64_t c = 0; c < C; ++c)
                            dd[c] += v[c] == wmax[c] ? dz[c] : T(0);
                    }
                }
        }
}

template <class T>
MINICNN_CLONES void avgpool_backward_image(T* dinp, const T* dout, const PoolGeom& g,
                                           std::int64_t n) {
    const std::int64_t C = g.c, image = g.h * g.w * C;
    const T area = T(g.kh * g.kw);
    T* d = dinp + n * image;
    std::fill(d, d + image, T(0));
    for (std::int64_t i = 0; i < g.oh; ++i)
        for (std::int64_t j = 0; j < g.ow; ++j) {
            const T* dz = dout + ((n * g.oh + i) * g.ow + j) * C;
            T* win = d + (i * g.sh * g.w + j * g.sw) * C;
            for (int a = 0; a < g.kh; ++a)
                for (int q = 0; q < g.kw; ++q) {
                    T* dd = win + (std::int64_t(a) * g.w + q) * C;
                    for (std::int64_t c = 0; c < C; ++c) dd[c] += dz[c] / area;
                }
        }
}

}  // namespace

template <class T>
void maxpool2d_forward(T* out, std::int32_t* mask, const T* inp, const PoolGeom& g) {
    // out (n, oh, ow, c); mask (n, oh, ow, c) or null; inp (n, h, w, c)
    check_geometry(g, "maxpool2d_forward");
    for (const void* p : {(const void*)out, (const void*)inp})
        require_ptr(p, g.n > 0, "maxpool2d_forward", "out or inp");
    for_rows(g, [&](std::int64_t bi) { maxpool_row(out, mask, inp, g, bi); });
}

template <class T>
void maxpool2d_forward_rows(T* out, std::int32_t* mask, const T* inp, const PoolGeom& g,
                            std::int64_t first, std::int64_t end) {
    for (std::int64_t bi = first; bi < end; ++bi) maxpool_row(out, mask, inp, g, bi);
}

template <class T>
void avgpool2d_forward(T* out, const T* inp, const PoolGeom& g) {
    // out (n, oh, ow, c); inp (n, h, w, c)
    check_geometry(g, "avgpool2d_forward");
    for (const void* p : {(const void*)out, (const void*)inp})
        require_ptr(p, g.n > 0, "avgpool2d_forward", "out or inp");
    for_rows(g, [&](std::int64_t bi) { avgpool_row(out, inp, g, bi); });
}

template <class T>
void maxpool2d_backward_mask(T* dinp, const T* dout, const std::int32_t* mask, const PoolGeom& g) {
    // dinp (n, h, w, c); dout (n, oh, ow, c); mask (n, oh, ow, c) in [0, kh*kw)
    check_geometry(g, "maxpool2d_backward_mask");
    for (const void* p : {(const void*)dinp, (const void*)dout, (const void*)mask})
        require_ptr(p, g.n > 0, "maxpool2d_backward_mask", "dinp, dout or mask");
    // A mask value out of range would write outside its window: the first one is reported.
    std::vector<std::int64_t> bad(std::size_t(g.n), -1);
    const std::vector<std::int64_t> offset = maxpool2d_window_offsets(g);
    for_images(g, [&](std::int64_t n) {
        bad[std::size_t(n)] = maxpool_backward_mask_image(dinp + n * g.h * g.w * g.c, dout, mask,
                                                          g, offset.data(), n);
    });
    for (const std::int64_t b : bad) require_mask_value(b, mask, g, "maxpool2d_backward_mask");
}

std::vector<std::int64_t> maxpool2d_window_offsets(const PoolGeom& g) {
    std::vector<std::int64_t> offset(std::size_t(g.kh) * std::size_t(g.kw));
    for (std::size_t pos = 0; pos < offset.size(); ++pos)
        offset[pos] = (std::int64_t(pos) / g.kw * g.w + std::int64_t(pos) % g.kw) * g.c;
    return offset;
}

template <class T>
void maxpool2d_backward_mask_image(T* dimage, const T* dout, const std::int32_t* mask,
                                   const PoolGeom& g, const std::int64_t* offset, std::int64_t n) {
    require_mask_value(maxpool_backward_mask_image(dimage, dout, mask, g, offset, n), mask, g,
                       "maxpool2d_backward_mask");
}

template <class T>
void maxpool2d_backward_allties(T* dinp, const T* dout, const T* inp, const PoolGeom& g) {
    // dinp (n, h, w, c); dout (n, oh, ow, c); inp (n, h, w, c)
    check_geometry(g, "maxpool2d_backward_allties");
    for (const void* p : {(const void*)dinp, (const void*)dout, (const void*)inp})
        require_ptr(p, g.n > 0, "maxpool2d_backward_allties", "dinp, dout or inp");
    for_images(g, [&](std::int64_t n) {
        thread_local std::vector<T> local;
        if (local.size() < std::size_t(g.c)) local.resize(std::size_t(g.c));
        maxpool_backward_allties_image(dinp, dout, inp, g, n, local.data());
    });
}

template <class T>
void avgpool2d_backward(T* dinp, const T* dout, const PoolGeom& g) {
    // dinp (n, h, w, c); dout (n, oh, ow, c)
    check_geometry(g, "avgpool2d_backward");
    for (const void* p : {(const void*)dinp, (const void*)dout})
        require_ptr(p, g.n > 0, "avgpool2d_backward", "dinp or dout");
    for_images(g, [&](std::int64_t n) { avgpool_backward_image(dinp, dout, g, n); });
}

#define MINICNN_INSTANTIATE_POOL(T)                                                               \
    template void maxpool2d_forward<T>(T*, std::int32_t*, const T*, const PoolGeom&);             \
    template void maxpool2d_forward_rows<T>(T*, std::int32_t*, const T*, const PoolGeom&,         \
                                            std::int64_t, std::int64_t);                          \
    template void avgpool2d_forward<T>(T*, const T*, const PoolGeom&);                            \
    template void maxpool2d_backward_mask<T>(T*, const T*, const std::int32_t*, const PoolGeom&); \
    template void maxpool2d_backward_mask_image<T>(T*, const T*, const std::int32_t*,             \
                                                   const PoolGeom&, const std::int64_t*,          \
                                                   std::int64_t);                                 \
    template void maxpool2d_backward_allties<T>(T*, const T*, const T*, const PoolGeom&);         \
    template void avgpool2d_backward<T>(T*, const T*, const PoolGeom&);
MINICNN_INSTANTIATE_POOL(float)
MINICNN_INSTANTIATE_POOL(double)
#undef MINICNN_INSTANTIATE_POOL

}  // namespace minicnn::cpu
