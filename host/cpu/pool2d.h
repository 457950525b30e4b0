// host/cpu/pool2d.h — pooling pieces the CPU backend's fused operations call (host/cpu/conv2d.cpp's
// conv2d_maxpool_forward and conv2d_maxpool_backward): max pooling of some output rows, and the
// mask's backward pass of one image, on the calling thread. The functional passes are in
// minicnn/cpu_backend.h.
#pragma once

#include <cstdint>
#include <vector>

#include "minicnn/geometry.h"

namespace minicnn::cpu {

// Output rows bi in [first, end) (bi = n * oh + i) of maxpool2d_forward: out and mask (may be null)
// as it writes them, on the calling thread.
template <class T>
void maxpool2d_forward_rows(T* out, std::int32_t* mask, const T* inp, const PoolGeom& g,
                            std::int64_t first, std::int64_t end);

// offset[pos]: window position pos's offset from the window's first cell, in elements (what
// maxpool2d_backward_mask_image takes, computed once per geometry).
std::vector<std::int64_t> maxpool2d_window_offsets(const PoolGeom& g);
// Image n of maxpool2d_backward_mask (dout and mask are the whole batch's), written to dimage
// (h, w, c) as that pass writes it; offset = maxpool2d_window_offsets(g). Throws minicnn::Error
// naming the first mask value outside [0, kh*kw).
template <class T>
void maxpool2d_backward_mask_image(T* dimage, const T* dout, const std::int32_t* mask,
                                   const PoolGeom& g, const std::int64_t* offset, std::int64_t n);

}  // namespace minicnn::cpu
