// host/cpu/conv2d.cpp — the 2-D convolution on the CPU (docs/operations.md "conv_forward",
// "conv_backward"), float and double: the CPU twin of cuda/conv2d.cu, used by the functional API
// (minicnn/cpu_backend.h) and by the training engine (host/cpu/conv2d.h), and the oracle the GPU
// kernels are tested against.
//
//   forward          out[n,i,j,k]  = act( sum_{a,q,c} Apad[n, i*sh+a, j*sw+q, c] * W[a,q,c,k] + b[k] )
//   backward_data    dinp[n,y,x,c] = sum_{a,q,k : y = i*sh+a-ph, x = j*sw+q-pw} W[a,q,c,k] * dout[n,i,j,k]
//   backward_filter  dW[a,q,c,k]   = sum_{n,i,j} Apad[n, i*sh+a, j*sw+q, c] * dout[n,i,j,k]
//                    db[k]         = sum_{n,i,j} dout[n,i,j,k]
//
// Method, float: the direct kernels of host/cpu/conv_direct.h where the CPU has AVX2 + FMA and the
// geometry suits them (forward and filter gradient with at least 2 input channels, or one with unit
// horizontal stride; backward-data where a kernel row's kw * c taps fill half a vector): forward and
// data gradient one pool task per image, the filter gradient one per batch chunk (partials below).
//
// Otherwise (double, other CPUs, LeNet's first layer's data gradient, CpuConvMethod::im2col):
// im2col + GEMM (host/cpu/im2col.h, host/cpu/gemm.h). A batch is cut into chunk_count(n) chunks of
// whole images (host/cpu/thread_pool.h); a chunk is processed in sub-batches of at most
// kMaxColsElements im2col entries (at least one image), each one single-threaded GEMM (forward: one
// pool task per sub-batch; backward: one per chunk):
//
//   forward   cols (rows, kh*kw*c) = im2col(inp);  out (rows, k) = cols @ W + b;  act in place
//   backward  dW_chunk += cols^T @ dout;  db_chunk += column sums of dout;  dcols = dout @ W^T;
//             dinp = col2im(dcols)                                    (rows = images * oh * ow)
//
// With c == 1 and unit horizontal stride (LeNet's first layer) the transposed layout is used, whose
// rows are contiguous copies. Weight gradients are summed per chunk, then the chunks in order: the
// chunking and the sub-batches depend on the shapes only, so results are bit-identical for any
// number of threads. The plain loops of the formulas above live in the tests as the oracle
// (tests/test_cpu_conv2d.cpp).
#include "conv2d.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "activation.h"
#include "conv_direct.h"
#include "fusion_rules.h"
#include "gemm.h"
#include "im2col.h"
#include "minicnn/error.h"
#include "pool2d.h"
#include "simd_clones.h"

namespace minicnn::cpu {

namespace {

// Largest im2col matrix one sub-batch builds (elements): 16 Ki (64 KiB in float32), so that it stays
// in the core's L2 cache between im2col and GEMM (measured on LeNet's layers: 2-4x faster than
// 16 MiB sub-batches). A sub-batch is at least one image.
constexpr std::int64_t kMaxColsElements = std::int64_t(1) << 14;

// A pointer the pass reads or writes must be non-null whenever there are elements behind it.
void require_ptr(const void* p, bool needed, const char* op, const char* name) {
    MINICNN_REQUIRE(p != nullptr || !needed, op << ": " << name << " is a null pointer");
}

std::int64_t kdim(const ConvGeom& g) {
    return std::int64_t(g.kh) * g.kw * g.c;
}
// Images per sub-batch: a function of the geometry only.
std::int64_t sub_images(const ConvGeom& g) {
    return std::max<std::int64_t>(
        1, kMaxColsElements / std::max<std::int64_t>(1, g.oh * g.ow * kdim(g)));
}

// o (rows, k) = oT (k, rows)^T (+ bias (k) when not null).
template <class T>
MINICNN_CLONES void transpose_add_bias(T* o, const T* oT, const T* bias, std::int64_t rows,
                                       std::int64_t k) {
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < k; ++j)
            o[r * k + j] = oT[j * rows + r] + (bias ? bias[j] : T(0));
}

// No samples: the weight and bias gradients (either may be null) are zero, a sum over no images.
template <class T>
void zero_gradients(T* dweight, T* dbias, const ConvGeom& g) {
    if (dweight) std::fill(dweight, dweight + g.weight_numel(), T(0));
    if (dbias) std::fill(dbias, dbias + g.k, T(0));
}

// s[0, len) += q[0, len).
template <class T>
MINICNN_CLONES void add_block(T* __restrict s, const T* __restrict q, std::int64_t len) {
    for (std::int64_t i = 0; i < len; ++i) s[i] += q[i];
}

}  // namespace

template <class T>
void reduce_partials(T* dweight, T* dbias, const T* p, std::int64_t chunks, std::int64_t wn,
                     std::int64_t bn) {
    const std::int64_t part = wn + bn;
    // Chunk by chunk over a block of the sum (each element still gets chunk 0 + 1 + 2 ... in
    // order), so the adds run along contiguous memory, in vectors.
    constexpr std::int64_t kBlock = 512;
    parallel_range(part, [&](std::int64_t i0, std::int64_t i1) {
        T s[kBlock];
        for (std::int64_t b = i0; b < i1; b += kBlock) {
            const std::int64_t len = std::min(kBlock, i1 - b);
            std::copy(p + b, p + b + len, s);
            for (std::int64_t c = 1; c < chunks; ++c) add_block(s, p + c * part + b, len);
            for (std::int64_t i = b; i < b + len; ++i) {
                if (i < wn) {
                    if (dweight) dweight[i] = s[i - b];
                } else if (dbias) {
                    dbias[i - wn] = s[i - b];
                }
            }
        }
    });
}

template <class T>
void conv2d_reserve(Workspace<T>& ws, const ConvGeom& g) {
    const std::int64_t rows = std::min(max_chunk_images(g.n), sub_images(g)) * g.oh * g.ow;
    std::int64_t cols = rows * kdim(g), pad = (g.h + 2 * g.ph) * (g.w + 2 * g.pw) * g.c, packed = 0;
    if (std::is_same_v<T, float> && direct::enabled()) {
        // The direct kernels: packed weights (shared), a packed filter gradient in `cols` and a
        // padded image of either pass per worker.
        cols = std::max(cols, direct::packed_filter_size(g));
        pad = std::max(pad, direct::pad_size(g));
        packed = std::max(direct::packed_forward_size(g), direct::packed_backward_data_size(g));
    }
    ws.grow(cols, rows * std::max(kdim(g), g.k), pad, chunk_count(g.n) * (kdim(g) * g.k + g.k),
            packed);
}

namespace {

// The direct float kernels (host/cpu/conv_direct.h) for a whole batch; false where they do not
// apply (double, no AVX2 + FMA, CpuConvMethod::im2col, or a geometry they do not suit).
bool direct_forward(float* out, const float* inp, const float* weight, const float* bias,
                    const ConvGeom& g, Activation act, Workspace<float>& ws) {
    if (!direct::forward_fits(g)) return false;
    direct::pack_forward(ws.packed.data(), weight, g);
    const std::int64_t pix = g.oh * g.ow;
    // One task per image (nothing is reduced across images): a worker that wakes late finds the
    // caller has taken the images it would have had, rather than a fixed chunk waiting for it.
    parallel_for(g.n, [&](std::int64_t b, int worker) {
        Workspace<float>::Worker& s = ws.workers[std::size_t(worker)];
        float* o = out + b * pix * g.k;
        direct::forward(o, inp + b * g.h * g.w * g.c, ws.packed.data(), bias, s.pad.data(), 1, g);
        activation_rows(o, o, pix, g.k, act);
    });
    return true;
}
template <class T>
bool direct_forward(T*, const T*, const T*, const T*, const ConvGeom&, Activation, Workspace<T>&) {
    return false;
}

// The direct filter gradient over the batch: one pool task per batch chunk, pass(dwp, db, b0,
// images, worker) filling the chunk's packed gradient in the worker's cols and its bias gradient;
// then each chunk's partial is unpacked and the partials are reduced in chunk order.
template <class Pass>
void direct_filter_chunks(float* dweight, float* dbias, const ConvGeom& g, Workspace<float>& ws,
                          Pass&& pass) {
    const std::int64_t chunks = chunk_count(g.n), kd = kdim(g), part = kd * g.k + g.k;
    parallel_for(chunks, [&](std::int64_t c, int worker) {
        Workspace<float>::Worker& s = ws.workers[std::size_t(worker)];
        const std::int64_t b0 = chunk_begin(g.n, c), images = chunk_begin(g.n, c + 1) - b0;
        float* pw = ws.partials.data() + c * part;
        pass(s.cols.data(), pw + kd * g.k, b0, images, s);
        direct::unpack_filter(pw, s.cols.data(), g);
    });
    reduce_partials(dweight, dbias, ws.partials.data(), chunks, kd * g.k, g.k);
}

// The filter gradient with the direct kernels; false where they do not apply.
bool direct_backward_filter(float* dweight, float* dbias, const float* dout, const float* inp,
                            const ConvGeom& g, Workspace<float>& ws) {
    if (!direct::backward_filter_fits(g)) return false;
    direct_filter_chunks(dweight, dbias, g, ws,
                         [&](float* dwp, float* db, std::int64_t b0, std::int64_t images,
                             Workspace<float>::Worker& s) {
                             direct::backward_filter(dwp, db, false, dout + b0 * g.oh * g.ow * g.k,
                                                     inp + b0 * g.h * g.w * g.c, s.pad.data(),
                                                     images, g);
                         });
    return true;
}
template <class T>
bool direct_backward_filter(T*, T*, const T*, const T*, const ConvGeom&, Workspace<T>&) {
    return false;
}

}  // namespace

bool conv2d_backward_filter_unpool_fits(const ConvGeom& conv, const PoolGeom& pool) {
    return direct::backward_filter_unpool_fits(conv, pool);
}

void conv2d_backward_filter_unpool(float* dweight, float* dbias, const float* g2,
                                   const std::int32_t* mask, const float* inp, const ConvGeom& g,
                                   const PoolGeom& pool, Workspace<float>& ws) {
    check_geometry(g, "conv2d_backward_filter_unpool");
    MINICNN_REQUIRE(conv2d_backward_filter_unpool_fits(g, pool),
                    "conv2d_backward_filter_unpool: no unpooling filter gradient for this geometry "
                    "on this CPU");
    if (g.n == 0) return zero_gradients(dweight, dbias, g);
    conv2d_reserve(ws, g);
    const std::int64_t pooled_image = pool.oh * pool.ow * pool.c;
    direct_filter_chunks(dweight, dbias, g, ws,
                         [&](float* dwp, float* db, std::int64_t b0, std::int64_t images,
                             Workspace<float>::Worker& s) {
                             direct::backward_filter_unpool(
                                 dwp, db, false, g2 + b0 * pooled_image, mask + b0 * pooled_image,
                                 inp + b0 * g.h * g.w * g.c, s.pad.data(), images, g, pool);
                         });
}

namespace {

// The data gradient with the direct kernels; false where they do not apply.
bool direct_backward_data(float* dinp, const float* dout, const float* weight, const ConvGeom& g,
                          Workspace<float>& ws) {
    if (!direct::backward_data_fits(g)) return false;
    direct::pack_backward_data(ws.packed.data(), weight, g);
    parallel_for(g.n, [&](std::int64_t b, int worker) {  // one task per image, as forward
        Workspace<float>::Worker& s = ws.workers[std::size_t(worker)];
        direct::backward_data(dinp + b * g.h * g.w * g.c, dout + b * g.oh * g.ow * g.k,
                              ws.packed.data(), s.pad.data(), 1, g);
    });
    return true;
}
template <class T>
bool direct_backward_data(T*, const T*, const T*, const ConvGeom&, Workspace<T>&) {
    return false;
}

}  // namespace

template <class T>
void conv2d_forward(T* out, const T* inp, const T* weight, const T* bias, const ConvGeom& g,
                    Activation act, Workspace<T>& ws) {
    check_geometry(g, "conv2d_forward");
    for (const void* p : {(const void*)out, (const void*)inp, (const void*)weight})
        require_ptr(p, g.n > 0, "conv2d_forward", "out, inp or weight");
    if (g.n == 0) return;
    conv2d_reserve(ws, g);
    if (direct_forward(out, inp, weight, bias, g, act, ws)) return;
    const std::int64_t kd = kdim(g), pix = g.oh * g.ow, chunks = chunk_count(g.n),
                       sub = sub_images(g);
    const bool transposed = use_transposed(g);
    // One task per sub-batch (the chunks' sub-batches, as the backward pass cuts them): nothing is
    // reduced across them, and a worker that wakes late finds the caller has taken its share.
    const std::int64_t per_chunk = ((g.n + chunks - 1) / chunks + sub - 1) / sub;
    parallel_for(chunks * per_chunk, [&](std::int64_t task, int worker) {
        typename Workspace<T>::Worker& s = ws.workers[std::size_t(worker)];
        const std::int64_t c = task / per_chunk, end = chunk_begin(g.n, c + 1);
        const std::int64_t b0 = chunk_begin(g.n, c) + task % per_chunk * sub;
        if (b0 >= end) return;  // a shorter chunk
        {
            const std::int64_t images = std::min(sub, end - b0), rows = images * pix;
            const T* img = inp + b0 * g.h * g.w * g.c;
            T* o = out + b0 * pix * g.k;
            if (transposed) {
                // outT (k, rows) = W^T (k, kd) @ colsT (kd, rows), then back to (rows, k).
                im2col_t(s.cols.data(), rows, img, s.pad.data(), images, g);
                cpu_gemm::gemm(true, false, g.k, rows, kd, T(1), weight, g.k, s.cols.data(), rows,
                               T(0), s.dcols.data(), rows);
                transpose_add_bias(o, s.dcols.data(), bias, rows, g.k);
            } else {
                im2col_rows(s.cols.data(), img, s.pad.data(), images, g);
                cpu_gemm::gemm(false, false, rows, g.k, kd, T(1), s.cols.data(), kd, weight, g.k,
                               T(0), o, g.k);
                if (bias) cpu_gemm::add_bias(o, bias, rows, g.k);
            }
            activation_rows(o, o, rows, g.k, act);
        }
    });
}

bool conv2d_maxpool_fits(const ConvGeom& conv, Activation act, const PoolGeom& pool) {
    return conv_maxpool_unfusable(conv, act, pool).empty() && direct::forward_fits(conv);
}

void conv2d_maxpool_forward(float* pooled, std::int32_t* mask, const float* inp,
                            const float* weight, const float* bias, const ConvGeom& g,
                            Activation act, const PoolGeom& pool, Workspace<float>& ws) {
    check_geometry(g, "conv2d_maxpool_forward");
    if (!conv2d_maxpool_fits(g, act, pool)) {
        const std::string why = conv_maxpool_unfusable(g, act, pool);
        MINICNN_REQUIRE(false, "conv2d_maxpool_forward: this convolution and pooling do not fuse "
                               "on this CPU ("
                                   << (why.empty() ? "no direct kernels for the convolution" : why)
                                   << ")");
    }
    if (g.n == 0) return;
    conv2d_reserve(ws, g);
    direct::pack_forward(ws.packed.data(), weight, g);
    PoolGeom one = pool;
    one.n = 1;
    const std::int64_t pix = g.oh * g.ow, pooled_image = pool.oh * pool.ow * pool.c;
    // One task per image, as conv2d_forward's direct path; the image's convolution output goes to
    // the worker's dcols (at least oh * ow * k floats: conv2d_reserve).
    const bool in_registers = direct::forward_maxpool_fits(g, act, one);
    parallel_for(g.n, [&](std::int64_t b, int worker) {
        Workspace<float>::Worker& s = ws.workers[std::size_t(worker)];
        if (in_registers) {  // the pooling in the convolution's registers, nothing in between
            direct::forward_maxpool(pooled + b * pooled_image,
                                    mask ? mask + b * pooled_image : nullptr,
                                    inp + b * g.h * g.w * g.c, ws.packed.data(), bias,
                                    s.pad.data(), act, g, one);
            return;
        }
        float* z = s.dcols.data();
        direct::forward(z, inp + b * g.h * g.w * g.c, ws.packed.data(), bias, s.pad.data(), 1, g);
        activation_rows(z, z, pix, g.k, act);
        maxpool2d_forward_rows(pooled + b * pooled_image, mask ? mask + b * pooled_image : nullptr,
                               z, one, 0, one.oh);
    });
}

bool conv2d_maxpool_backward_fits(const ConvGeom& conv, const PoolGeom& pool) {
    return conv.c >= 2 && direct::backward_filter_fits(conv) && direct::backward_data_fits(conv) &&
           pool.n == conv.n && pool.h == conv.oh && pool.w == conv.ow && pool.c == conv.k;
}

void conv2d_maxpool_backward(float* dinp, float* dweight, float* dbias, const float* g2,
                             const std::int32_t* mask, const float* inp, const float* weight,
                             const ConvGeom& g, const PoolGeom& pool, Workspace<float>& ws) {
    check_geometry(g, "conv2d_maxpool_backward");
    MINICNN_REQUIRE(conv2d_maxpool_backward_fits(g, pool),
                    "conv2d_maxpool_backward: no image-by-image backward pass for this "
                    "convolution and pooling on this CPU");
    if (g.n == 0) return zero_gradients(dweight, dbias, g);
    conv2d_reserve(ws, g);
    if (dinp) direct::pack_backward_data(ws.packed.data(), weight, g);
    const std::vector<std::int64_t> offset = maxpool2d_window_offsets(pool);
    // Per image: its dout in the worker's dcols (at least oh * ow * k floats: conv2d_reserve); the
    // filter pass reads the padded image from the worker's pad, then the data pass accumulates its
    // padded gradient there (the filter pass is done with it by then).
    direct_filter_chunks(
        dweight, dbias, g, ws,
        [&](float* dwp, float* db, std::int64_t b0, std::int64_t images,
            Workspace<float>::Worker& s) {
            float* dz = s.dcols.data();
            for (std::int64_t b = b0; b < b0 + images; ++b) {
                maxpool2d_backward_mask_image(dz, g2, mask, pool, offset.data(), b);
                direct::backward_filter(dwp, db, b > b0, dz, inp + b * g.h * g.w * g.c,
                                        s.pad.data(), 1, g);
                if (dinp)
                    direct::backward_data(dinp + b * g.h * g.w * g.c, dz, ws.packed.data(),
                                          s.pad.data(), 1, g);
            }
        });
}

template <class T>
void conv2d_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                     const ConvGeom& g, Workspace<T>& ws) {
    check_geometry(g, "conv2d_backward");
    if (g.n == 0) return zero_gradients(dweight, dbias, g);
    conv2d_reserve(ws, g);
    if ((dweight || dbias) && direct_backward_filter(dweight, dbias, dout, inp, g, ws))
        dweight = dbias = nullptr;  // done
    if (dinp && direct_backward_data(dinp, dout, weight, g, ws)) dinp = nullptr;  // done
    const bool want_w = dweight != nullptr || dbias != nullptr;
    if (!dinp && !want_w) return;
    const std::int64_t kd = kdim(g), pix = g.oh * g.ow, chunks = chunk_count(g.n),
                       sub = sub_images(g);
    const std::int64_t part = kd * g.k + g.k;
    const bool transposed = use_transposed(g);
    parallel_for(chunks, [&](std::int64_t c, int worker) {
        typename Workspace<T>::Worker& s = ws.workers[std::size_t(worker)];
        T* pw = ws.partials.data() + c * part;
        const std::int64_t first = chunk_begin(g.n, c);
        for (std::int64_t b0 = first, end = chunk_begin(g.n, c + 1); b0 < end; b0 += sub) {
            const std::int64_t images = std::min(sub, end - b0), rows = images * pix;
            const T beta = b0 == first ? T(0) : T(1);  // sub-batches of a chunk accumulate in order
            const T* dz = dout + b0 * pix * g.k;
            const T* img = inp + b0 * g.h * g.w * g.c;
            T* dimg = dinp ? dinp + b0 * g.h * g.w * g.c : nullptr;
            if (transposed) {
                // dW (kd, k) = colsT (kd, rows) @ dz (rows, k); dcolsT (kd, rows) = W (kd, k) @ dz^T.
                if (want_w) {
                    im2col_t(s.cols.data(), rows, img, s.pad.data(), images, g);
                    cpu_gemm::gemm(false, false, kd, g.k, rows, T(1), s.cols.data(), rows, dz, g.k,
                                   beta, pw, g.k);
                }
                if (dimg) {
                    cpu_gemm::gemm(false, true, kd, rows, g.k, T(1), weight, g.k, dz, g.k, T(0),
                                   s.dcols.data(), rows);
                    col2im_t(dimg, s.dcols.data(), rows, s.pad.data(), images, g);
                }
            } else {
                // dW (kd, k) = cols^T (kd, rows) @ dz (rows, k); dcols (rows, kd) = dz @ W^T.
                if (want_w) {
                    im2col_rows(s.cols.data(), img, s.pad.data(), images, g);
                    cpu_gemm::gemm(true, false, kd, g.k, rows, T(1), s.cols.data(), kd, dz, g.k,
                                   beta, pw, g.k);
                }
                if (dimg) {
                    cpu_gemm::gemm(false, true, rows, kd, g.k, T(1), dz, g.k, weight, g.k, T(0),
                                   s.dcols.data(), kd);
                    col2im_rows(dimg, s.dcols.data(), s.pad.data(), images, g);
                }
            }
            if (want_w) cpu_gemm::column_sums(pw + kd * g.k, dz, rows, g.k, b0 != first);
        }
    });
    if (want_w) reduce_partials(dweight, dbias, ws.partials.data(), chunks, kd * g.k, g.k);
}

// ---- the functional API's pointer-level entry points (minicnn/cpu_backend.h)

namespace {
// Their scratch: one workspace per calling thread, kept between calls (it only grows), so that a
// call does not allocate, zero and fault in its scratch anew. A workspace per call cost conv2's
// forward at batch 256 0.55 ms against 0.34 ms, depending on whether the allocator had kept the
// memory from the call before (minicnn_bench --cpu --filter lenet_conv2_b256: its first rows).
// The entry points never run inside one another on a thread, so the one workspace is never
// shared by two calls.
template <class T>
Workspace<T>& call_workspace() {
    thread_local Workspace<T> ws;
    return ws;
}
}  // namespace

template <class T>
void conv2d_forward(T* out, const T* inp, const T* weight, const T* bias, const ConvGeom& g,
                    Activation act) {
    Workspace<T>& ws = call_workspace<T>();
    conv2d_forward(out, inp, weight, bias, g, act, ws);
}

template <class T>
void conv2d_backward_data(T* dinp, const T* dout, const T* weight, const ConvGeom& g) {
    check_geometry(g, "conv2d_backward_data");
    for (const void* p : {(const void*)dinp, (const void*)dout, (const void*)weight})
        require_ptr(p, g.n > 0, "conv2d_backward_data", "dinp, dout or weight");
    Workspace<T>& ws = call_workspace<T>();
    conv2d_backward<T>(dinp, nullptr, nullptr, dout, nullptr, weight, g, ws);
}

template <class T>
void conv2d_backward_filter(T* dweight, T* dbias, const T* dout, const T* inp, const ConvGeom& g) {
    check_geometry(g, "conv2d_backward_filter");
    for (const void* p : {(const void*)dweight, (const void*)dout, (const void*)inp})
        require_ptr(p, g.n > 0, "conv2d_backward_filter", "dweight, dout or inp");
    require_ptr(dweight, true, "conv2d_backward_filter", "dweight");
    Workspace<T>& ws = call_workspace<T>();
    conv2d_backward<T>(nullptr, dweight, dbias, dout, inp, nullptr, g, ws);
}

#define MINICNN_INSTANTIATE_CONV(T)                                                                \
    template void reduce_partials<T>(T*, T*, const T*, std::int64_t, std::int64_t, std::int64_t);  \
    template void conv2d_reserve<T>(Workspace<T>&, const ConvGeom&);                               \
    template void conv2d_forward<T>(T*, const T*, const T*, const T*, const ConvGeom&, Activation, \
                                    Workspace<T>&);                                                \
    template void conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const ConvGeom&,    \
                                     Workspace<T>&);                                               \
    template void conv2d_forward<T>(T*, const T*, const T*, const T*, const ConvGeom&,             \
                                    Activation);                                                   \
    template void conv2d_backward_data<T>(T*, const T*, const T*, const ConvGeom&);                \
    template void conv2d_backward_filter<T>(T*, T*, const T*, const T*, const ConvGeom&);
MINICNN_INSTANTIATE_CONV(float)
MINICNN_INSTANTIATE_CONV(double)
#undef MINICNN_INSTANTIATE_CONV

}  // namespace minicnn::cpu
