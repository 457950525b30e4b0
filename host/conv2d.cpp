// host/conv2d.cpp — CPU reference of the 2-D convolution (docs/operations.md "conv_forward", "conv_backward"):
// the oracle the CUDA kernels of cuda/conv2d.cu are tested against, in float and double.
//
//   forward          out[n,i,j,k]   = act( sum_{a,q,c} Apad[n, i*sh+a, j*sw+q, c] * W[a,q,c,k] +
//   b[k] ) backward_data    dinp[n,y,x,c]  = sum_{a,q,k : y = i*sh+a-ph, x = j*sw+q-pw} W[a,q,c,k]
//   * dout[n,i,j,k] backward_filter  dW[a,q,c,k]    = sum_{n,i,j} Apad[n, i*sh+a, j*sw+q, c] *
//   dout[n,i,j,k]
//                    db[k]          = sum_{n,i,j} dout[n,i,j,k]
//
// Apad is never materialised: taps that fall in the zero padding are skipped.
// Layouts: inp/dinp (n, h, w, c), weight/dweight (kh, kw, c, k) (HWIO), out/dout (n, oh, ow, k).
// With NHWC and HWIO the channel-out axis k is contiguous both in W and in out, so the innermost
// loop of forward and backward_filter runs over k; backward_data's innermost loop is a dot product
// over k.
//
// Threads (OpenMP, static schedule) own output elements, never a slice of a reduction:
//   forward:          one thread per output row (n, i)       -> out[n, i, :, :]
//   backward_data:    one thread per input row (n, y)        -> dinp[n, y, :, :] (a gather, no
//   scatter) backward_filter:  one thread per kernel tap (a, q)       -> dW[a, q, :, :]; db is
//   summed serially.
// Each sum runs in a fixed order, so the result is bit-identical for any number of threads.
#include <cstdint>
#include <vector>

#include "minicnn/cpu_backend.h"
#include "minicnn/error.h"

namespace minicnn::cpu {

namespace {

// Below this many multiply-adds a pass runs on the calling thread: forking threads costs more than
// it saves, and oversubscribed machines make tiny parallel regions slow. (Results do not depend on
// it.)
constexpr double kMinParallelMacs = 1 << 15;

// A pointer the pass reads or writes must be non-null whenever there are elements behind it.
void require_ptr(const void* p, bool needed, const char* op, const char* name) {
    MINICNN_REQUIRE(p != nullptr || !needed, op << ": " << name << " is a null pointer");
}

// The pointer-level functions trust the shapes (conv_geometry() validated them), but a hand-built
// geometry that contradicts docs/operations.md's output-size rule would read out of bounds: refuse it.
void check_geom(const ConvGeom& g, const char* op) {
    MINICNN_REQUIRE(g.n >= 0 && g.h > 0 && g.w > 0 && g.c > 0 && g.k > 0,
                    op << ": expected positive sizes, got n=" << g.n << " h=" << g.h << " w=" << g.w
                       << " c=" << g.c << " k=" << g.k);
    MINICNN_REQUIRE(
        g.kh > 0 && g.kw > 0 && g.sh > 0 && g.sw > 0 && g.ph >= 0 && g.pw >= 0,
        op << ": expected positive kernel and stride and non-negative padding, got kernel (" << g.kh
           << ", " << g.kw << ") stride (" << g.sh << ", " << g.sw << ") padding (" << g.ph << ", "
           << g.pw << ")");
    const std::int64_t oh = (g.h + 2 * g.ph - g.kh) / g.sh + 1;
    const std::int64_t ow = (g.w + 2 * g.pw - g.kw) / g.sw + 1;
    MINICNN_REQUIRE(g.h + 2 * g.ph >= g.kh && g.w + 2 * g.pw >= g.kw && g.oh == oh && g.ow == ow,
                    op << ": output size (" << g.oh << ", " << g.ow << ") does not match input ("
                       << g.h << ", " << g.w << "), kernel (" << g.kh << ", " << g.kw
                       << "), stride and padding; expected (" << oh << ", " << ow << ")");
}

}  // namespace

template <class T>
void conv2d_forward(T* out, const T* inp, const T* weight, const T* bias, const ConvGeom& g,
                    Activation act) {
    // out (n, oh, ow, k); inp (n, h, w, c); weight (kh, kw, c, k); bias (k) or null
    check_geom(g, "conv2d_forward");
    for (const void* p : {(const void*)out, (const void*)inp, (const void*)weight})
        require_ptr(p, g.n > 0, "conv2d_forward", "out, inp or weight");
    const std::int64_t H = g.h, W = g.w, C = g.c, K = g.k, OH = g.oh, OW = g.ow;

#pragma omp parallel for schedule(static) if (g.macs() >= kMinParallelMacs)
    for (std::int64_t ni = 0; ni < g.n * OH; ++ni) {
        const std::int64_t n = ni / OH, i = ni % OH;
        for (std::int64_t j = 0; j < OW; ++j) {
            T* o = out + ((n * OH + i) * OW + j) * K;  // (K)
            for (std::int64_t k = 0; k < K; ++k) o[k] = T(0);
            for (int a = 0; a < g.kh; ++a) {
                const std::int64_t y = i * g.sh + a - g.ph;
                if (y < 0 || y >= H) continue;  // zero padding contributes nothing
                for (int q = 0; q < g.kw; ++q) {
                    const std::int64_t x = j * g.sw + q - g.pw;
                    if (x < 0 || x >= W) continue;
                    const T* in = inp + ((n * H + y) * W + x) * C;                // (C)
                    const T* wt = weight + (std::int64_t(a) * g.kw + q) * C * K;  // (C, K)
                    for (std::int64_t c = 0; c < C; ++c) {
                        const T v = in[c];
                        const T* wrow = wt + c * K;
                        for (std::int64_t k = 0; k < K; ++k) o[k] += v * wrow[k];
                    }
                }
            }
            if (bias != nullptr) {
                for (std::int64_t k = 0; k < K; ++k) o[k] += bias[k];
            }
        }
    }
    // Fused activation, applied in place over rows of K channels (softmax normalises over k).
    if (act != Activation::linear) activation_forward<T>(out, out, g.n * OH * OW, K, act);
}

template <class T>
void conv2d_backward_data(T* dinp, const T* dout, const T* weight, const ConvGeom& g) {
    // dinp (n, h, w, c); dout (n, oh, ow, k); weight (kh, kw, c, k)
    check_geom(g, "conv2d_backward_data");
    for (const void* p : {(const void*)dinp, (const void*)dout, (const void*)weight})
        require_ptr(p, g.n > 0, "conv2d_backward_data", "dinp, dout or weight");
    const std::int64_t H = g.h, W = g.w, C = g.c, K = g.k, OH = g.oh, OW = g.ow;

    // Gather: input cell (y, x) receives from every output (i, j) and tap (a, q) with
    // i*sh + a - ph == y and j*sw + q - pw == x. Cells no window reaches stay zero.
#pragma omp parallel for schedule(static) if (g.macs() >= kMinParallelMacs)
    for (std::int64_t ny = 0; ny < g.n * H; ++ny) {
        const std::int64_t n = ny / H, y = ny % H;
        for (std::int64_t x = 0; x < W; ++x) {
            T* d = dinp + ((n * H + y) * W + x) * C;  // (C)
            for (std::int64_t c = 0; c < C; ++c) d[c] = T(0);
            for (int a = 0; a < g.kh; ++a) {
                const std::int64_t ti = y + g.ph - a;  // = i * sh
                if (ti < 0 || ti % g.sh != 0) continue;
                const std::int64_t i = ti / g.sh;
                if (i >= OH) continue;
                for (int q = 0; q < g.kw; ++q) {
                    const std::int64_t tj = x + g.pw - q;  // = j * sw
                    if (tj < 0 || tj % g.sw != 0) continue;
                    const std::int64_t j = tj / g.sw;
                    if (j >= OW) continue;
                    const T* dz = dout + ((n * OH + i) * OW + j) * K;             // (K)
                    const T* wt = weight + (std::int64_t(a) * g.kw + q) * C * K;  // (C, K)
                    for (std::int64_t c = 0; c < C; ++c) {
                        const T* wrow = wt + c * K;
                        T acc = T(0);
                        for (std::int64_t k = 0; k < K; ++k) acc += wrow[k] * dz[k];
                        d[c] += acc;
                    }
                }
            }
        }
    }
}

template <class T>
void conv2d_backward_filter(T* dweight, T* dbias, const T* dout, const T* inp, const ConvGeom& g) {
    // dweight (kh, kw, c, k); dbias (k) or null; dout (n, oh, ow, k); inp (n, h, w, c)
    check_geom(g, "conv2d_backward_filter");
    require_ptr(dweight, true, "conv2d_backward_filter", "dweight");
    for (const void* p : {(const void*)dout, (const void*)inp})
        require_ptr(p, g.n > 0, "conv2d_backward_filter", "dout or inp");
    const std::int64_t H = g.h, W = g.w, C = g.c, K = g.k, OH = g.oh, OW = g.ow;
    const std::int64_t taps = std::int64_t(g.kh) * g.kw;

    // One thread per tap (a, q) owns dW[a, q, :, :] and sums over (n, i, j) in that order.
#pragma omp parallel for schedule(static) if (g.macs() >= kMinParallelMacs)
    for (std::int64_t t = 0; t < taps; ++t) {
        const int a = static_cast<int>(t / g.kw), q = static_cast<int>(t % g.kw);
        T* dw = dweight + t * C * K;  // (C, K)
        for (std::int64_t e = 0; e < C * K; ++e) dw[e] = T(0);
        for (std::int64_t n = 0; n < g.n; ++n) {
            for (std::int64_t i = 0; i < OH; ++i) {
                const std::int64_t y = i * g.sh + a - g.ph;
                if (y < 0 || y >= H) continue;  // the tap sits in the zero padding
                for (std::int64_t j = 0; j < OW; ++j) {
                    const std::int64_t x = j * g.sw + q - g.pw;
                    if (x < 0 || x >= W) continue;
                    const T* in = inp + ((n * H + y) * W + x) * C;     // (C)
                    const T* dz = dout + ((n * OH + i) * OW + j) * K;  // (K)
                    for (std::int64_t c = 0; c < C; ++c) {
                        const T v = in[c];
                        T* dwrow = dw + c * K;
                        for (std::int64_t k = 0; k < K; ++k) dwrow[k] += v * dz[k];
                    }
                }
            }
        }
    }

    if (dbias != nullptr) {
        // db[k] = sum over (n, i, j) of dout, in that order; cheap, so serial.
        for (std::int64_t k = 0; k < K; ++k) dbias[k] = T(0);
        const std::int64_t pixels = g.n * OH * OW;
        for (std::int64_t p = 0; p < pixels; ++p) {
            const T* dz = dout + p * K;  // (K)
            for (std::int64_t k = 0; k < K; ++k) dbias[k] += dz[k];
        }
    }
}

#define MINICNN_INSTANTIATE_CONV(T)                                                    \
    template void conv2d_forward<T>(T*, const T*, const T*, const T*, const ConvGeom&, \
                                    Activation);                                       \
    template void conv2d_backward_data<T>(T*, const T*, const T*, const ConvGeom&);    \
    template void conv2d_backward_filter<T>(T*, T*, const T*, const T*, const ConvGeom&);
MINICNN_INSTANTIATE_CONV(float)
MINICNN_INSTANTIATE_CONV(double)
#undef MINICNN_INSTANTIATE_CONV

}  // namespace minicnn::cpu
