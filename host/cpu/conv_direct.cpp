// host/cpu/conv_direct.cpp — the direct float convolution (host/cpu/conv_direct.h): the micro-kernels
// of host/cpu/conv_direct_kernels.inc compiled for AVX-512 and for AVX2 + FMA, the widest one the CPU
// has chosen at run time.
#include "conv_direct.h"

#include <algorithm>
#include <atomic>

#include "im2col.h"
#include "minicnn/error.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define MINICNN_DIRECT_CONV 1
#endif

namespace minicnn::cpu {

namespace {
std::atomic<CpuConvMethod> g_method{CpuConvMethod::automatic};
}  // namespace

void set_conv_method(CpuConvMethod m) {
    g_method.store(m);
}
CpuConvMethod conv_method() {
    return g_method.load();
}

namespace direct {

#if MINICNN_DIRECT_CONV
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
struct Isa {
    using V = __m256;
    static constexpr int kLanes = 8;
    static constexpr int kAcc = 12;  // of 16 vector registers
    static V zero() { return _mm256_setzero_ps(); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    // Lanes [0, n), 0 < n < 8: the others are neither read nor written.
    static __m256i mask(int n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static V load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
    static void store_n(float* p, V v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
    // Lanes 2i and 2i+1 = g[i] (i < 4), where m[i] equals pos_even (lane 2i) or pos_odd
    // (lane 2i+1); 0 elsewhere: a 2x2 window row expanded from its pooled value and mask.
    static V unpool_pairs(const float* g, const std::int32_t* m, int pos_even, int pos_odd) {
        const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
        const __m256 gv = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(g)), dup);
        const __m256i mv = _mm256_permutevar8x32_epi32(
            _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(m))), dup);
        const __m256i want = _mm256_setr_epi32(pos_even, pos_odd, pos_even, pos_odd, pos_even,
                                               pos_odd, pos_even, pos_odd);
        return _mm256_and_ps(gv, _mm256_castsi256_ps(_mm256_cmpeq_epi32(mv, want)));
    }
    // Lanes [0, n) of g where m >> 1 equals a (a 2x2 window's mask names row a), 0 elsewhere.
    static V keep_row(const float* g, const std::int32_t* m, int a, int n) {
        const __m256i k = mask(n);
        const __m256i hit = _mm256_cmpeq_epi32(_mm256_srai_epi32(_mm256_maskload_epi32(m, k), 1),
                                               _mm256_set1_epi32(a));
        return _mm256_and_ps(_mm256_maskload_ps(g, k), _mm256_castsi256_ps(hit));
    }
};
#include "conv_direct_kernels.inc"
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
namespace avx512 {
struct Isa {
    using V = __m512;
    static constexpr int kLanes = 16;
    static constexpr int kAcc = 24;  // of 32 vector registers
    static V zero() { return _mm512_setzero_ps(); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static V bcast(const float* p) { return _mm512_set1_ps(*p); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static __mmask16 mask(int n) { return __mmask16((1u << n) - 1u); }
    static V load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
    static void store_n(float* p, V v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
    // As avx2::Isa::unpool_pairs, for 8 pooled values.
    static V unpool_pairs(const float* g, const std::int32_t* m, int pos_even, int pos_odd) {
        const __m512i dup =
            _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        const __m512 gv = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(g)));
        const __m512i mv = _mm512_permutexvar_epi32(
            dup, _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(m))));
        const __m512i want = _mm512_setr_epi32(pos_even, pos_odd, pos_even, pos_odd, pos_even,
                                               pos_odd, pos_even, pos_odd, pos_even, pos_odd,
                                               pos_even, pos_odd, pos_even, pos_odd, pos_even,
                                               pos_odd);
        return _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(mv, want), gv);
    }
    // As avx2::Isa::keep_row.
    static V keep_row(const float* g, const std::int32_t* m, int a, int n) {
        const __mmask16 k = mask(n);
        const __mmask16 hit = _mm512_mask_cmpeq_epi32_mask(
            k, _mm512_srai_epi32(_mm512_maskz_loadu_epi32(k, m), 1), _mm512_set1_epi32(a));
        return _mm512_maskz_loadu_ps(hit, g);
    }
};
#include "conv_direct_kernels.inc"

// One input channel, unit horizontal stride, then a linear or ReLU activation and a 2x2, stride-2
// max pooling, in registers (AVX-512 only; AVX2 CPUs run the convolution of the image, then the
// pooling, cpu::conv2d_maxpool_forward's general path): two output rows of up to 32 pixels times
// KB channels (2 x KB x 2 accumulators), then per channel the even and odd pixels of each row
// (vpermt2ps) are the window's four candidates, compared in maxpool2d_forward's order (p00, p01,
// p10, p11, strict >), and the pooled values and mask positions are scattered to NHWC.
// The convolution's sums and its bias and activation are those of c1_forward_image and
// activation_rows, bit for bit (the same FMAs in the same order; max(z, 0) is z > 0 ? z : 0).
template <int KB>
void c1_pool_tile(float* pooled, std::int32_t* mask, std::int64_t ldk, const float* x,
                  std::int64_t xrow, std::int64_t rowstep, int kh, int kw, const float* w,
                  std::int64_t kp, const float* bias, bool relu, int count, int npool) {
    const __mmask16 m0 = Isa::mask(count >= 16 ? 16 : count);
    const __mmask16 m1 = Isa::mask(count > 16 ? count - 16 : 0);
    __m512 acc[2][KB][2];
    for (int r = 0; r < 2; ++r)
#pragma GCC unroll 32
        for (int kb = 0; kb < KB; ++kb) acc[r][kb][0] = acc[r][kb][1] = _mm512_setzero_ps();
    for (int a = 0; a < kh; ++a)
        for (int q = 0; q < kw; ++q) {
            const float* xa = x + a * xrow + q;
            const __m512 x00 = _mm512_maskz_loadu_ps(m0, xa);
            const __m512 x01 = _mm512_maskz_loadu_ps(m1, xa + 16);
            const __m512 x10 = _mm512_maskz_loadu_ps(m0, xa + rowstep);
            const __m512 x11 = _mm512_maskz_loadu_ps(m1, xa + rowstep + 16);
            const float* wq = w + (std::int64_t(a) * kw + q) * kp;
#pragma GCC unroll 32
            for (int kb = 0; kb < KB; ++kb) {
                const __m512 wb = _mm512_set1_ps(wq[kb]);
                acc[0][kb][0] = _mm512_fmadd_ps(x00, wb, acc[0][kb][0]);
                acc[0][kb][1] = _mm512_fmadd_ps(x01, wb, acc[0][kb][1]);
                acc[1][kb][0] = _mm512_fmadd_ps(x10, wb, acc[1][kb][0]);
                acc[1][kb][1] = _mm512_fmadd_ps(x11, wb, acc[1][kb][1]);
            }
        }
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __mmask16 out = Isa::mask(npool);
    const __m512i at = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(std::int32_t(ldk)));
#pragma GCC unroll 32
    for (int kb = 0; kb < KB; ++kb) {
        const __m512 b = bias ? _mm512_set1_ps(bias[kb]) : _mm512_setzero_ps();
        __m512 z[2][2];
        for (int r = 0; r < 2; ++r)
            for (int v = 0; v < 2; ++v) {
                z[r][v] = _mm512_add_ps(acc[r][kb][v], b);
                if (relu) z[r][v] = _mm512_max_ps(z[r][v], _mm512_setzero_ps());
            }
        const __m512 p00 = _mm512_permutex2var_ps(z[0][0], even, z[0][1]);
        const __m512 p01 = _mm512_permutex2var_ps(z[0][0], odd, z[0][1]);
        const __m512 p10 = _mm512_permutex2var_ps(z[1][0], even, z[1][1]);
        const __m512 p11 = _mm512_permutex2var_ps(z[1][0], odd, z[1][1]);
        __m512 best = p00;
        __m512i pos = _mm512_setzero_si512();
        __mmask16 gt = _mm512_cmp_ps_mask(p01, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, gt, p01);
        pos = _mm512_mask_mov_epi32(pos, gt, _mm512_set1_epi32(1));
        gt = _mm512_cmp_ps_mask(p10, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, gt, p10);
        pos = _mm512_mask_mov_epi32(pos, gt, _mm512_set1_epi32(2));
        gt = _mm512_cmp_ps_mask(p11, best, _CMP_GT_OQ);
        best = _mm512_mask_mov_ps(best, gt, p11);
        pos = _mm512_mask_mov_epi32(pos, gt, _mm512_set1_epi32(3));
        // To NHWC: pooled pixel j of channel kb at j * ldk + kb.
        _mm512_mask_i32scatter_ps(pooled + kb, out, at, best, 4);
        if (mask) _mm512_mask_i32scatter_epi32(mask + kb, out, at, pos, 4);
    }
}
template <int One, int KB>
struct C1Pool {  // dispatch<C1Pool, 1, KB> picks the channel count
    template <class... Args>
    static void run(Args... args) {
        c1_pool_tile<KB>(args...);
    }
};

// One image: pooled (poh, pow, k) and mask from the padded image src.
void c1_pool_image(float* pooled, std::int32_t* mask, const float* src, const float* wp,
                   const float* bias, bool relu, const ConvGeom& g, const PoolGeom& pool) {
    constexpr int KB = 6;
    const std::int64_t wpad = g.w + 2 * g.pw, kp = (g.k + 15) / 16 * 16;
    for (std::int64_t pi = 0; pi < pool.oh; ++pi) {
        const float* x = src + 2 * pi * g.sh * wpad;
        for (std::int64_t j0 = 0; j0 < 2 * pool.ow; j0 += 32) {
            const int count = int(g.ow - j0 < 32 ? g.ow - j0 : 32);
            const int npool = int(pool.ow - j0 / 2 < 16 ? pool.ow - j0 / 2 : 16);
            const std::int64_t o = (pi * pool.ow + j0 / 2) * g.k;
            for (std::int64_t k0 = 0; k0 < g.k; k0 += KB) {
                const int kb = int(g.k - k0 < KB ? g.k - k0 : KB);
                dispatch<C1Pool, 1, KB>(kb, pooled + o + k0, mask ? mask + o + k0 : nullptr, g.k,
                                        x + j0, wpad, g.sh * wpad, g.kh, g.kw, wp + k0, kp,
                                        bias ? bias + k0 : nullptr, relu, count, npool);
            }
        }
    }
}
}  // namespace avx512
#pragma GCC pop_options
#endif  // MINICNN_DIRECT_CONV

namespace {

enum class Isa { none, avx2, avx512 };

Isa best_isa() {
#if MINICNN_DIRECT_CONV
    static const Isa best = [] {
        __builtin_cpu_init();
        if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return Isa::none;
        return __builtin_cpu_supports("avx512f") ? Isa::avx512 : Isa::avx2;
    }();
    return best;
#else
    return Isa::none;
#endif
}

// The kernels the current method runs.
Isa active_isa() {
    switch (conv_method()) {
        case CpuConvMethod::im2col: return Isa::none;
        case CpuConvMethod::direct_avx2: return best_isa() == Isa::none ? Isa::none : Isa::avx2;
        default: return best_isa();
    }
}

}  // namespace

bool enabled() {
    return active_isa() != Isa::none;
}

int vector_lanes() {
    switch (active_isa()) {
        case Isa::avx512: return 16;
        case Isa::avx2: return 8;
        default: return 0;
    }
}

const char* isa_name() {
    switch (active_isa()) {
        case Isa::avx512: return "AVX-512";
        case Isa::avx2: return "AVX2";
        default: return "";
    }
}

std::int64_t lanes(std::int64_t k) {
    const std::int64_t l = std::max(1, vector_lanes());
    return (k + l - 1) / l * l;
}

namespace {
// One input channel with unit horizontal stride: the kernels that vectorise over output pixels.
bool one_channel(const ConvGeom& g) {
    return g.c == 1 && g.sw == 1;
}
// Floats of the worker's pad scratch that hold the padded image (16 of slack for whole-vector
// writes); what the one-channel filter gradient needs comes after them.
std::int64_t image_floats(const ConvGeom& g) {
    return (g.h + 2 * g.ph) * (g.w + 2 * g.pw) * g.c + 16;
}
// ... of dout transposed to (k, oh, ow rounded up to 16).
std::int64_t transposed_floats(const ConvGeom& g) {
    return g.k * g.oh * ((g.ow + 15) / 16 * 16);
}
// ... of the unpooling's channel-major copies of a pooled gradient and mask
// (backward_filter_unpool).
std::int64_t unpool_floats(const ConvGeom& g) {
    return 2 * g.k * (g.oh / 2 + 1) * ((g.ow / 2 + 1 + 15) / 16 * 16 + 16);
}
// ... of the filter gradient's per-lane sums over a batch chunk: (kh*kw, k, 16).
std::int64_t lane_sum_floats(const ConvGeom& g) {
    return std::int64_t(g.kh) * g.kw * g.k * 16;
}
// Where each one-channel scratch starts in the worker's pad scratch.
float* transposed_at(float* pad, const ConvGeom& g) {
    return pad + image_floats(g);
}
float* unpool_at(float* pad, const ConvGeom& g) {
    return transposed_at(pad, g) + transposed_floats(g);
}
float* lane_sums_at(float* pad, const ConvGeom& g) {
    return unpool_at(pad, g) + unpool_floats(g);
}
// dwp (+)= the one-channel filter gradient's lane sums (c1_filter_lanes of the running ISA).
void c1_filter_lanes(Isa isa, float* dwp, bool accumulate, const float* lane_sums,
                     const ConvGeom& g) {
#if MINICNN_DIRECT_CONV
    if (isa == Isa::avx512)
        avx512::c1_filter_lanes(dwp, accumulate, lane_sums, g);
    else
        avx2::c1_filter_lanes(dwp, accumulate, lane_sums, g);
#else
    (void)isa, (void)dwp, (void)accumulate, (void)lane_sums, (void)g;
#endif
}
}  // namespace

bool forward_fits(const ConvGeom& g) {
    return enabled() && (g.c >= 2 || one_channel(g));
}
bool backward_filter_fits(const ConvGeom& g) {
    return enabled() && (g.c >= 2 || one_channel(g));
}
bool backward_data_fits(const ConvGeom& g) {
    // A kernel row's taps (kw * c) fill at least half of a vector: not LeNet's first layer (5 taps),
    // whose im2col + GEMM path is as fast.
    return enabled() && std::int64_t(g.kw) * g.c >= vector_lanes() / 2;
}

bool forward_maxpool_fits(const ConvGeom& g, Activation act, const PoolGeom& pool) {
    return active_isa() == Isa::avx512 && one_channel(g) &&
           (act == Activation::linear || act == Activation::relu) && pool.kh == 2 &&
           pool.kw == 2 && pool.sh == 2 && pool.sw == 2 && pool.h == g.oh && pool.w == g.ow &&
           pool.c == g.k;
}

void forward_maxpool(float* pooled, std::int32_t* mask, const float* inp, const float* wp,
                     const float* bias, float* pad, Activation act, const ConvGeom& g,
                     const PoolGeom& pool) {
#if MINICNN_DIRECT_CONV
    MINICNN_REQUIRE(forward_maxpool_fits(g, act, pool),
                    "direct convolution: no fused pooling kernel for this geometry");
    avx512::c1_pool_image(pooled, mask, pad_image(inp, pad, g), wp, bias,
                          act == Activation::relu, g, pool);
#else
    (void)pooled, (void)mask, (void)inp, (void)wp, (void)bias, (void)pad, (void)act, (void)g,
        (void)pool;
#endif
}

std::int64_t pad_size(const ConvGeom& g) {
    // One input channel: the filter gradient's scratch after the image (transposed_at, unpool_at,
    // lane_sums_at).
    return image_floats(g) +
           (one_channel(g) ? transposed_floats(g) + unpool_floats(g) + lane_sum_floats(g) : 0);
}

void pack_backward_data(float* wt, const float* weight, const ConvGeom& g) {
    const std::int64_t seg = std::int64_t(g.kw) * g.c, sp = lanes(seg);
    for (int a = 0; a < g.kh; ++a)
        for (std::int64_t kk = 0; kk < g.k; ++kk) {
            float* d = wt + (std::int64_t(a) * g.k + kk) * sp;
            const float* s = weight + std::int64_t(a) * seg * g.k + kk;
            for (std::int64_t t = 0; t < seg; ++t) d[t] = s[t * g.k];
            std::fill(d + seg, d + sp, 0.0f);
        }
}

void backward_data(float* dinp, const float* dout, const float* wt, float* pad,
                   std::int64_t images, const ConvGeom& g) {
#if MINICNN_DIRECT_CONV
    const Isa isa = active_isa();
    MINICNN_REQUIRE(isa != Isa::none, "direct convolution: no vector ISA enabled");
    for (std::int64_t b = 0; b < images; ++b) {
        const float* dy = dout + b * g.oh * g.ow * g.k;
        if (isa == Isa::avx512)
            avx512::data_image(pad, dy, wt, g);
        else
            avx2::data_image(pad, dy, wt, g);
        unpad(dinp + b * g.h * g.w * g.c, pad, g);
    }
#else
    (void)dinp, (void)dout, (void)wt, (void)pad, (void)images, (void)g;
#endif
}

void pack_forward(float* wp, const float* weight, const ConvGeom& g) {
    const std::int64_t rows = std::int64_t(g.kh) * g.kw * g.c, kp = lanes(g.k);
    for (std::int64_t r = 0; r < rows; ++r) {
        std::copy(weight + r * g.k, weight + (r + 1) * g.k, wp + r * kp);
        std::fill(wp + r * kp + g.k, wp + (r + 1) * kp, 0.0f);
    }
}

void forward(float* out, const float* inp, const float* wp, const float* bias, float* pad,
             std::int64_t images, const ConvGeom& g) {
#if MINICNN_DIRECT_CONV
    const Isa isa = active_isa();
    MINICNN_REQUIRE(isa != Isa::none, "direct convolution: no vector ISA enabled");
    for (std::int64_t b = 0; b < images; ++b) {
        const float* src = pad_image(inp + b * g.h * g.w * g.c, pad, g);
        float* o = out + b * g.oh * g.ow * g.k;
        if (one_channel(g)) {
            if (isa == Isa::avx512)
                avx512::c1_forward_image(o, src, wp, bias, g);
            else
                avx2::c1_forward_image(o, src, wp, bias, g);
        } else if (isa == Isa::avx512) {
            avx512::forward_image(o, src, wp, bias, g);
        } else {
            avx2::forward_image(o, src, wp, bias, g);
        }
    }
#else
    (void)out, (void)inp, (void)wp, (void)bias, (void)pad, (void)images, (void)g;
#endif
}

void backward_filter(float* dwp, float* db, bool accumulate, const float* dout, const float* inp,
                     float* pad, std::int64_t images, const ConvGeom& g) {
#if MINICNN_DIRECT_CONV
    const Isa isa = active_isa();
    MINICNN_REQUIRE(isa != Isa::none, "direct convolution: no vector ISA enabled");
    // One input channel: the weights' lane sums over the images, summed across lanes at the end.
    float* lane_sums = one_channel(g) ? lane_sums_at(pad, g) : nullptr;
    for (std::int64_t b = 0; b < images; ++b) {
        const float* src = pad_image(inp + b * g.h * g.w * g.c, pad, g);
        const float* dy = dout + b * g.oh * g.ow * g.k;
        const bool acc = accumulate || b > 0;
        if (one_channel(g)) {
            float* dyT = transposed_at(pad, g);
            if (isa == Isa::avx512)
                avx512::c1_filter_image(lane_sums, b > 0, dy, src, dyT, g);
            else
                avx2::c1_filter_image(lane_sums, b > 0, dy, src, dyT, g);
        } else if (isa == Isa::avx512) {
            avx512::filter_image(dwp, acc, dy, src, g);
        } else {
            avx2::filter_image(dwp, acc, dy, src, g);
        }
        if (db) {
            if (isa == Isa::avx512)
                avx512::bias_image(db, acc, dy, g.oh * g.ow, g.k);
            else
                avx2::bias_image(db, acc, dy, g.oh * g.ow, g.k);
        }
    }
    if (lane_sums && images > 0) c1_filter_lanes(isa, dwp, accumulate, lane_sums, g);
#else
    (void)dwp, (void)db, (void)accumulate, (void)dout, (void)inp, (void)pad, (void)images, (void)g;
#endif
}

bool backward_filter_unpool_fits(const ConvGeom& g, const PoolGeom& pool) {
    return enabled() && one_channel(g) && pool.kh == 2 && pool.kw == 2 && pool.sh == 2 &&
           pool.sw == 2 && pool.h == g.oh && pool.w == g.ow && pool.c == g.k;
}

void backward_filter_unpool(float* dwp, float* db, bool accumulate, const float* g2,
                            const std::int32_t* mask, const float* inp, float* pad,
                            std::int64_t images, const ConvGeom& g, const PoolGeom& pool) {
#if MINICNN_DIRECT_CONV
    const Isa isa = active_isa();
    MINICNN_REQUIRE(backward_filter_unpool_fits(g, pool),
                    "direct convolution: no unpooling filter gradient for this geometry");
    const std::int64_t pooled_image = pool.oh * pool.ow * pool.c;
    float* dyT = transposed_at(pad, g);
    float* scratch = unpool_at(pad, g);
    float* lane_sums = lane_sums_at(pad, g);
    for (std::int64_t b = 0; b < images; ++b) {
        const float* src = pad_image(inp + b * g.h * g.w * g.c, pad, g);
        const float* gb = g2 + b * pooled_image;
        const std::int32_t* mb = mask + b * pooled_image;
        // db is summed image by image, the weights' lanes over the chunk (c1_filter_lanes).
        const bool acc_db = accumulate || b > 0, acc_lanes = b > 0;
        if (isa == Isa::avx512)
            avx512::c1_filter_unpool_image(lane_sums, db, acc_db, acc_lanes, gb, mb, src, dyT,
                                           scratch, g, pool);
        else
            avx2::c1_filter_unpool_image(lane_sums, db, acc_db, acc_lanes, gb, mb, src, dyT,
                                         scratch, g, pool);
    }
    if (images > 0) c1_filter_lanes(isa, dwp, accumulate, lane_sums, g);
#else
    (void)dwp, (void)db, (void)accumulate, (void)g2, (void)mask, (void)inp, (void)pad,
        (void)images, (void)g, (void)pool;
#endif
}

void unpack_filter(float* dweight, const float* dwp, const ConvGeom& g) {
    const std::int64_t rows = std::int64_t(g.kh) * g.kw * g.c, kp = lanes(g.k);
    for (std::int64_t r = 0; r < rows; ++r)
        std::copy(dwp + r * kp, dwp + r * kp + g.k, dweight + r * g.k);
}

}  // namespace direct
}  // namespace minicnn::cpu
