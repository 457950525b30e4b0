// host/cpu/im2col.cpp — im2col and its adjoint, col2im, for the CPU convolution (host/cpu/im2col.h).
#include "im2col.h"

#include <algorithm>
#include <cstring>

#include "simd_clones.h"

namespace minicnn::cpu {

template <class T>
const T* pad_image(const T* img, T* pad, const ConvGeom& g) {
    if (g.ph == 0 && g.pw == 0) return img;
    const std::int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
    std::fill(pad, pad + hp * wp * g.c, T(0));
    for (std::int64_t y = 0; y < g.h; ++y) {
        std::memcpy(pad + ((y + g.ph) * wp + g.pw) * g.c, img + y * g.w * g.c,
                    std::size_t(g.w * g.c) * sizeof(T));
    }
    return pad;
}

template <class T>
void unpad(T* dimg, const T* dpad, const ConvGeom& g) {
    const std::int64_t wp = g.w + 2 * g.pw;
    for (std::int64_t y = 0; y < g.h; ++y) {
        std::memcpy(dimg + y * g.w * g.c, dpad + ((y + g.ph) * wp + g.pw) * g.c,
                    std::size_t(g.w * g.c) * sizeof(T));
    }
}

// Row layout, cols (images * oh * ow, kh * kw * c): row (b, i, j) holds the receptive field in
// (a, q, c) order, the order of the HWIO weight's rows; each (a) is one contiguous copy of kw * c
// values from the padded image.
template <class T>
MINICNN_CLONES void im2col_rows(T* cols, const T* inp, T* pad, std::int64_t images,
                                const ConvGeom& g) {
    const std::int64_t kdim = std::int64_t(g.kh) * g.kw * g.c, seg = std::int64_t(g.kw) * g.c;
    const std::int64_t wp = g.w + 2 * g.pw;
    for (std::int64_t b = 0; b < images; ++b) {
        const T* src = pad_image(inp + b * g.h * g.w * g.c, pad, g);
        for (std::int64_t i = 0; i < g.oh; ++i) {
            for (std::int64_t j = 0; j < g.ow; ++j) {
                T* row = cols + ((b * g.oh + i) * g.ow + j) * kdim;
                for (int a = 0; a < g.kh; ++a) {
                    const T* s = src + ((i * g.sh + a) * wp + j * g.sw) * g.c;
                    for (std::int64_t t = 0; t < seg; ++t) row[a * seg + t] = s[t];
                }
            }
        }
    }
}

// Transposed layout, colsT (kh * kw * c, ld) with ld >= images * oh * ow: row (a, q, ch) is the
// shifted image plane; with c == 1 and stride 1 each output row is one contiguous copy.
template <class T>
MINICNN_CLONES void im2col_t(T* colsT, std::int64_t ld, const T* inp, T* pad, std::int64_t images,
                             const ConvGeom& g) {
    const std::int64_t wp = g.w + 2 * g.pw, pix = g.oh * g.ow;
    for (std::int64_t b = 0; b < images; ++b) {
        const T* src = pad_image(inp + b * g.h * g.w * g.c, pad, g);
        for (int a = 0; a < g.kh; ++a)
            for (int q = 0; q < g.kw; ++q)
                for (std::int64_t ch = 0; ch < g.c; ++ch) {
                    T* dst = colsT + ((std::int64_t(a) * g.kw + q) * g.c + ch) * ld + b * pix;
                    for (std::int64_t i = 0; i < g.oh; ++i) {
                        const T* s = src + ((i * g.sh + a) * wp + q) * g.c + ch;
                        T* d = dst + i * g.ow;
                        const std::int64_t step = g.sw * g.c;
                        if (step == 1) {
                            std::memcpy(d, s, std::size_t(g.ow) * sizeof(T));
                        } else {
                            for (std::int64_t j = 0; j < g.ow; ++j) d[j] = s[j * step];
                        }
                    }
                }
    }
}

// dinp (images, h, w, c) = the sum of the dcols entries of every window position reading a cell
// (the adjoint of im2col_rows). Accumulates in a padded image, then drops the border.
template <class T>
MINICNN_CLONES void col2im_rows(T* dinp, const T* dcols, T* dpad, std::int64_t images,
                                const ConvGeom& g) {
    const std::int64_t kdim = std::int64_t(g.kh) * g.kw * g.c, seg = std::int64_t(g.kw) * g.c;
    const std::int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
    const bool has_pad = g.ph != 0 || g.pw != 0;
    for (std::int64_t b = 0; b < images; ++b) {
        T* dimg = dinp + b * g.h * g.w * g.c;
        T* acc = has_pad ? dpad : dimg;
        std::fill(acc, acc + hp * wp * g.c, T(0));
        for (std::int64_t i = 0; i < g.oh; ++i) {
            for (std::int64_t j = 0; j < g.ow; ++j) {
                const T* row = dcols + ((b * g.oh + i) * g.ow + j) * kdim;
                for (int a = 0; a < g.kh; ++a) {
                    T* d = acc + ((i * g.sh + a) * wp + j * g.sw) * g.c;
                    for (std::int64_t t = 0; t < seg; ++t) d[t] += row[a * seg + t];
                }
            }
        }
        if (has_pad) unpad(dimg, dpad, g);
    }
}

// The adjoint of im2col_t.
template <class T>
MINICNN_CLONES void col2im_t(T* dinp, const T* dcolsT, std::int64_t ld, T* dpad,
                             std::int64_t images, const ConvGeom& g) {
    const std::int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw, pix = g.oh * g.ow;
    const bool has_pad = g.ph != 0 || g.pw != 0;
    for (std::int64_t b = 0; b < images; ++b) {
        T* dimg = dinp + b * g.h * g.w * g.c;
        T* acc = has_pad ? dpad : dimg;
        std::fill(acc, acc + hp * wp * g.c, T(0));
        for (int a = 0; a < g.kh; ++a)
            for (int q = 0; q < g.kw; ++q)
                for (std::int64_t ch = 0; ch < g.c; ++ch) {
                    const T* src =
                        dcolsT + ((std::int64_t(a) * g.kw + q) * g.c + ch) * ld + b * pix;
                    for (std::int64_t i = 0; i < g.oh; ++i) {
                        T* d = acc + ((i * g.sh + a) * wp + q) * g.c + ch;
                        const T* s = src + i * g.ow;
                        const std::int64_t step = g.sw * g.c;
                        if (step == 1) {
                            for (std::int64_t j = 0; j < g.ow; ++j) d[j] += s[j];
                        } else {
                            for (std::int64_t j = 0; j < g.ow; ++j) d[j * step] += s[j];
                        }
                    }
                }
        if (has_pad) unpad(dimg, dpad, g);
    }
}

#define MINICNN_INSTANTIATE_IM2COL(T)                                                         \
    template const T* pad_image<T>(const T*, T*, const ConvGeom&);                            \
    template void unpad<T>(T*, const T*, const ConvGeom&);                                    \
    template void im2col_rows<T>(T*, const T*, T*, std::int64_t, const ConvGeom&);            \
    template void im2col_t<T>(T*, std::int64_t, const T*, T*, std::int64_t, const ConvGeom&); \
    template void col2im_rows<T>(T*, const T*, T*, std::int64_t, const ConvGeom&);            \
    template void col2im_t<T>(T*, const T*, std::int64_t, T*, std::int64_t, const ConvGeom&);
MINICNN_INSTANTIATE_IM2COL(float)
MINICNN_INSTANTIATE_IM2COL(double)
#undef MINICNN_INSTANTIATE_IM2COL

}  // namespace minicnn::cpu
