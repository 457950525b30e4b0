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
};
#include "conv_direct_kernels.inc"
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

std::int64_t pad_size(const ConvGeom& g) {
    const std::int64_t image = (g.h + 2 * g.ph) * (g.w + 2 * g.pw) * g.c + 16;
    // One input channel: dout transposed for the filter gradient after the image.
    return image + (one_channel(g) ? g.k * g.oh * ((g.ow + 15) / 16 * 16) : 0);
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
    const std::int64_t wpad = g.w + 2 * g.pw;
    for (std::int64_t b = 0; b < images; ++b) {
        const float* dy = dout + b * g.oh * g.ow * g.k;
        if (isa == Isa::avx512)
            avx512::data_image(pad, dy, wt, g);
        else
            avx2::data_image(pad, dy, wt, g);
        float* dimg = dinp + b * g.h * g.w * g.c;
        for (std::int64_t y = 0; y < g.h; ++y)
            std::copy(pad + ((y + g.ph) * wpad + g.pw) * g.c,
                      pad + ((y + g.ph) * wpad + g.pw + g.w) * g.c, dimg + y * g.w * g.c);
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
    for (std::int64_t b = 0; b < images; ++b) {
        const float* src = pad_image(inp + b * g.h * g.w * g.c, pad, g);
        const float* dy = dout + b * g.oh * g.ow * g.k;
        const bool acc = accumulate || b > 0;
        if (one_channel(g)) {
            float* dyT = pad + (g.h + 2 * g.ph) * (g.w + 2 * g.pw) * g.c + 16;
            if (isa == Isa::avx512)
                avx512::c1_filter_image(dwp, acc, dy, src, dyT, g);
            else
                avx2::c1_filter_image(dwp, acc, dy, src, dyT, g);
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
#else
    (void)dwp, (void)db, (void)accumulate, (void)dout, (void)inp, (void)pad, (void)images, (void)g;
#endif
}

void unpack_filter(float* dweight, const float* dwp, const ConvGeom& g) {
    const std::int64_t rows = std::int64_t(g.kh) * g.kw * g.c, kp = lanes(g.k);
    for (std::int64_t r = 0; r < rows; ++r)
        std::copy(dwp + r * kp, dwp + r * kp + g.k, dweight + r * g.k);
}

}  // namespace direct
}  // namespace minicnn::cpu
