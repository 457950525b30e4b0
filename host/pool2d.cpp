// host/pool2d.cpp — CPU reference of 2-D pooling (docs/operations.md "pool_forward", "pool_backward" and the
// training path's argmax masks): the oracle for cuda/pool2d.cu, in float and double. No padding.
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
// Threads (OpenMP, static schedule): forward passes give one thread per output row (n, i) ->
// out[n, i, :, :]; backward passes give one thread per image n -> dinp[n, :, :, :], which it zeroes
// and then scatters into window by window in (i, j, a, q) order. No two threads write the same
// element and every sum has a fixed order, so results do not depend on the thread count.
#include <cstdint>
#include <vector>

#include "minicnn/cpu_backend.h"
#include "minicnn/error.h"

namespace minicnn::cpu {

namespace {

// Below this much work (window cells visited) a pass runs on the calling thread: forking threads
// costs more than it saves. (Results do not depend on it.)
constexpr std::int64_t kMinParallelWork = 1 << 15;

std::int64_t work(const PoolGeom& g) {
    return g.out_numel() * g.kh * g.kw;
}

// A pointer the pass reads or writes must be non-null whenever there are elements behind it.
void require_ptr(const void* p, bool needed, const char* op, const char* name) {
    MINICNN_REQUIRE(p != nullptr || !needed, op << ": " << name << " is a null pointer");
}

void check_geom(const PoolGeom& g, const char* op) {
    MINICNN_REQUIRE(g.n >= 0 && g.h > 0 && g.w > 0 && g.c > 0,
                    op << ": expected positive sizes, got n=" << g.n << " h=" << g.h << " w=" << g.w
                       << " c=" << g.c);
    MINICNN_REQUIRE(g.kh > 0 && g.kw > 0 && g.sh > 0 && g.sw > 0,
                    op << ": expected positive window and stride, got window (" << g.kh << ", "
                       << g.kw << ") stride (" << g.sh << ", " << g.sw << ")");
    const std::int64_t oh = (g.h - g.kh) / g.sh + 1;
    const std::int64_t ow = (g.w - g.kw) / g.sw + 1;
    MINICNN_REQUIRE(g.h >= g.kh && g.w >= g.kw && g.oh == oh && g.ow == ow,
                    op << ": output size (" << g.oh << ", " << g.ow << ") does not match input ("
                       << g.h << ", " << g.w << "), window (" << g.kh << ", " << g.kw
                       << ") and stride (" << g.sh << ", " << g.sw << "); expected (" << oh << ", "
                       << ow << ")");
}

// Pointer to inp[n, y, x, 0] (C values).
template <class T>
const T* cell(const T* base, const PoolGeom& g, std::int64_t n, std::int64_t y, std::int64_t x) {
    return base + ((n * g.h + y) * g.w + x) * g.c;
}

}  // namespace

template <class T>
void maxpool2d_forward(T* out, std::int32_t* mask, const T* inp, const PoolGeom& g) {
    // out (n, oh, ow, c); mask (n, oh, ow, c) or null; inp (n, h, w, c)
    check_geom(g, "maxpool2d_forward");
    for (const void* p : {(const void*)out, (const void*)inp})
        require_ptr(p, g.n > 0, "maxpool2d_forward", "out or inp");
    const std::int64_t C = g.c, OH = g.oh, OW = g.ow;

#pragma omp parallel for schedule(static) if (work(g) >= kMinParallelWork)
    for (std::int64_t ni = 0; ni < g.n * OH; ++ni) {
        const std::int64_t n = ni / OH, i = ni % OH;
        for (std::int64_t j = 0; j < OW; ++j) {
            const std::int64_t o = ((n * OH + i) * OW + j) * C;
            T* best = out + o;  // (C)
            // Start from the window's first cell (position 0); later cells win only if strictly
            // larger.
            const T* first = cell(inp, g, n, i * g.sh, j * g.sw);
            for (std::int64_t c = 0; c < C; ++c) best[c] = first[c];
            if (mask != nullptr) {
                for (std::int64_t c = 0; c < C; ++c) mask[o + c] = 0;
            }
            for (int a = 0; a < g.kh; ++a) {
                for (int q = 0; q < g.kw; ++q) {
                    if (a == 0 && q == 0) continue;
                    const T* v = cell(inp, g, n, i * g.sh + a, j * g.sw + q);  // (C)
                    const std::int32_t pos = a * g.kw + q;
                    for (std::int64_t c = 0; c < C; ++c) {
                        if (v[c] > best[c]) {
                            best[c] = v[c];
                            if (mask != nullptr) mask[o + c] = pos;
                        }
                    }
                }
            }
        }
    }
}

template <class T>
void avgpool2d_forward(T* out, const T* inp, const PoolGeom& g) {
    // out (n, oh, ow, c); inp (n, h, w, c)
    check_geom(g, "avgpool2d_forward");
    for (const void* p : {(const void*)out, (const void*)inp})
        require_ptr(p, g.n > 0, "avgpool2d_forward", "out or inp");
    const std::int64_t C = g.c, OH = g.oh, OW = g.ow;
    const T area = T(g.kh * g.kw);

#pragma omp parallel for schedule(static) if (work(g) >= kMinParallelWork)
    for (std::int64_t ni = 0; ni < g.n * OH; ++ni) {
        const std::int64_t n = ni / OH, i = ni % OH;
        for (std::int64_t j = 0; j < OW; ++j) {
            T* o = out + ((n * OH + i) * OW + j) * C;  // (C)
            for (std::int64_t c = 0; c < C; ++c) o[c] = T(0);
            for (int a = 0; a < g.kh; ++a) {
                for (int q = 0; q < g.kw; ++q) {
                    const T* v = cell(inp, g, n, i * g.sh + a, j * g.sw + q);  // (C)
                    for (std::int64_t c = 0; c < C; ++c) o[c] += v[c];
                }
            }
            for (std::int64_t c = 0; c < C; ++c) o[c] /= area;
        }
    }
}

template <class T>
void maxpool2d_backward_mask(T* dinp, const T* dout, const std::int32_t* mask, const PoolGeom& g) {
    // dinp (n, h, w, c); dout (n, oh, ow, c); mask (n, oh, ow, c) in [0, kh*kw)
    check_geom(g, "maxpool2d_backward_mask");
    for (const void* p : {(const void*)dinp, (const void*)dout, (const void*)mask})
        require_ptr(p, g.n > 0, "maxpool2d_backward_mask", "dinp, dout or mask");
    const std::int64_t C = g.c, OH = g.oh, OW = g.ow;
    const std::int64_t image = g.h * g.w * C;
    const std::int32_t area = g.kh * g.kw;

    // A mask out of range would write outside the window: report it (after the parallel loop, since
    // an exception must not leave an OpenMP region).
    std::int64_t bad = -1;
#pragma omp parallel for schedule(static) if (work(g) >= kMinParallelWork)
    for (std::int64_t n = 0; n < g.n; ++n) {
        T* d = dinp + n * image;  // (h, w, c)
        for (std::int64_t e = 0; e < image; ++e) d[e] = T(0);
        for (std::int64_t i = 0; i < OH; ++i) {
            for (std::int64_t j = 0; j < OW; ++j) {
                const std::int64_t o = ((n * OH + i) * OW + j) * C;
                for (std::int64_t c = 0; c < C; ++c) {
                    const std::int32_t pos = mask[o + c];
                    if (pos < 0 || pos >= area) {
#pragma omp critical(minicnn_pool_bad_mask)
                        if (bad < 0) bad = o + c;
                        continue;
                    }
                    const std::int64_t y = i * g.sh + pos / g.kw, x = j * g.sw + pos % g.kw;
                    d[(y * g.w + x) * C + c] += dout[o + c];
                }
            }
        }
    }
    MINICNN_REQUIRE(bad < 0, "maxpool2d_backward_mask: mask values must lie in [0, "
                                 << area << ") for a " << g.kh << "x" << g.kw << " window, found "
                                 << mask[bad] << " at flat index " << bad);
}

template <class T>
void maxpool2d_backward_allties(T* dinp, const T* dout, const T* inp, const PoolGeom& g) {
    // dinp (n, h, w, c); dout (n, oh, ow, c); inp (n, h, w, c)
    check_geom(g, "maxpool2d_backward_allties");
    for (const void* p : {(const void*)dinp, (const void*)dout, (const void*)inp})
        require_ptr(p, g.n > 0, "maxpool2d_backward_allties", "dinp, dout or inp");
    const std::int64_t C = g.c, OH = g.oh, OW = g.ow;
    const std::int64_t image = g.h * g.w * C;

#pragma omp parallel if (work(g) >= kMinParallelWork)
    {
        std::vector<T> wmax(static_cast<std::size_t>(C));  // this thread's window maxima (C)
#pragma omp for schedule(static)
        for (std::int64_t n = 0; n < g.n; ++n) {
            T* d = dinp + n * image;  // (h, w, c)
            for (std::int64_t e = 0; e < image; ++e) d[e] = T(0);
            for (std::int64_t i = 0; i < OH; ++i) {
                for (std::int64_t j = 0; j < OW; ++j) {
                    // The window's maximum, recomputed from the input.
                    const T* first = cell(inp, g, n, i * g.sh, j * g.sw);
                    for (std::int64_t c = 0; c < C; ++c) wmax[c] = first[c];
                    for (int a = 0; a < g.kh; ++a) {
                        for (int q = 0; q < g.kw; ++q) {
                            const T* v = cell(inp, g, n, i * g.sh + a, j * g.sw + q);
                            for (std::int64_t c = 0; c < C; ++c) {
                                if (v[c] > wmax[c]) wmax[c] = v[c];
                            }
                        }
                    }
                    // Every cell equal to it receives the window's full gradient.
                    const T* dz = dout + ((n * OH + i) * OW + j) * C;  // (C)
                    for (int a = 0; a < g.kh; ++a) {
                        for (int q = 0; q < g.kw; ++q) {
                            const std::int64_t y = i * g.sh + a, x = j * g.sw + q;
                            const T* v = cell(inp, g, n, y, x);
                            T* dd = d + (y * g.w + x) * C;
                            for (std::int64_t c = 0; c < C; ++c) {
                                if (v[c] == wmax[c]) dd[c] += dz[c];
                            }
                        }
                    }
                }
            }
        }
    }
}

template <class T>
void avgpool2d_backward(T* dinp, const T* dout, const PoolGeom& g) {
    // dinp (n, h, w, c); dout (n, oh, ow, c)
    check_geom(g, "avgpool2d_backward");
    for (const void* p : {(const void*)dinp, (const void*)dout})
        require_ptr(p, g.n > 0, "avgpool2d_backward", "dinp or dout");
    const std::int64_t C = g.c, OH = g.oh, OW = g.ow;
    const std::int64_t image = g.h * g.w * C;
    const T area = T(g.kh * g.kw);

#pragma omp parallel for schedule(static) if (work(g) >= kMinParallelWork)
    for (std::int64_t n = 0; n < g.n; ++n) {
        T* d = dinp + n * image;  // (h, w, c)
        for (std::int64_t e = 0; e < image; ++e) d[e] = T(0);
        for (std::int64_t i = 0; i < OH; ++i) {
            for (std::int64_t j = 0; j < OW; ++j) {
                const T* dz = dout + ((n * OH + i) * OW + j) * C;  // (C)
                for (int a = 0; a < g.kh; ++a) {
                    for (int q = 0; q < g.kw; ++q) {
                        T* dd = d + ((i * g.sh + a) * g.w + (j * g.sw + q)) * C;
                        for (std::int64_t c = 0; c < C; ++c) dd[c] += dz[c] / area;
                    }
                }
            }
        }
    }
}

#define MINICNN_INSTANTIATE_POOL(T)                                                               \
    template void maxpool2d_forward<T>(T*, std::int32_t*, const T*, const PoolGeom&);             \
    template void avgpool2d_forward<T>(T*, const T*, const PoolGeom&);                            \
    template void maxpool2d_backward_mask<T>(T*, const T*, const std::int32_t*, const PoolGeom&); \
    template void maxpool2d_backward_allties<T>(T*, const T*, const T*, const PoolGeom&);         \
    template void avgpool2d_backward<T>(T*, const T*, const PoolGeom&);
MINICNN_INSTANTIATE_POOL(float)
MINICNN_INSTANTIATE_POOL(double)
#undef MINICNN_INSTANTIATE_POOL

}  // namespace minicnn::cpu
