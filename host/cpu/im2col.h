// host/cpu/im2col.h — the convolution's data movement for the CPU backend (host/cpu/conv2d.cpp): the
// receptive fields of a batch chunk laid out as a matrix for GEMM, and the adjoint that sums a
// gradient matrix back into images. `pad` is scratch for one zero-padded image
// ((h + 2ph) * (w + 2pw) * c values; unused without padding).
//
//   rows layout       cols (images * oh * ow, kh * kw * c): row (b, i, j) holds the receptive field in
//                     (a, q, c) order, the order of the HWIO weight's rows.
//   transposed layout colsT (kh * kw * c, ld), ld >= images * oh * ow: row (a, q, ch) is the shifted
//                     image plane; with c == 1 and stride 1 each output row is one contiguous copy.
#pragma once

#include <cstdint>

#include "minicnn/geometry.h"

namespace minicnn::cpu {

// Whether the transposed layout pays off: a window row of one channel is a contiguous run.
inline bool use_transposed(const ConvGeom& g) {
    return g.c == 1 && g.sw == 1;
}

// The image (h, w, c) with a zero border of (ph, pw): into `pad` ((h + 2ph, w + 2pw, c)), or the
// image itself when there is no padding.
template <class T>
const T* pad_image(const T* img, T* pad, const ConvGeom& g);
// dimg (h, w, c) = the interior of the padded image gradient dpad (h + 2ph, w + 2pw, c).
template <class T>
void unpad(T* dimg, const T* dpad, const ConvGeom& g);

template <class T>
void im2col_rows(T* cols, const T* inp, T* pad, std::int64_t images, const ConvGeom& g);
template <class T>
void im2col_t(T* colsT, std::int64_t ld, const T* inp, T* pad, std::int64_t images,
              const ConvGeom& g);
// dinp (images, h, w, c) = the sum of the entries of every window position reading a cell.
template <class T>
void col2im_rows(T* dinp, const T* dcols, T* dpad, std::int64_t images, const ConvGeom& g);
template <class T>
void col2im_t(T* dinp, const T* dcolsT, std::int64_t ld, T* dpad, std::int64_t images,
              const ConvGeom& g);

}  // namespace minicnn::cpu
