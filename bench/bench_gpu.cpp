// bench/bench_gpu.cpp — minicnn's CUDA launchers against cuDNN, same inputs, same run, same stream.
//
// Compiled only in CUDA builds where cuDNN was found (MINICNN_BENCH_CUDNN). For each layer of
// bench_common.h it uploads the same inputs the CPU part uses, runs minicnn's launchers
// (minicnn/cuda_backend.h, the library's own entry points) and cuDNN's legacy convolution/pooling
// API on them, compares the outputs, and only then times both:
//   - fp32 everywhere, TF32 off: every convolution descriptor is CUDNN_FMA_MATH and cuDNN
//     algorithms reporting a tensor-op math type are rejected (run.sh also sets
//     NVIDIA_TF32_OVERRIDE=0);
//   - cuDNN's algorithm per op: the fastest that cudnnFind*Algorithm reports under FMA math;
//   - NHWC tensors for both; cuDNN's NHWC filter layout is (k, kh, kw, c), so the HWIO weights are
//     transposed for it once, untimed, and its dW transposed back for the comparison;
//   - what is timed is what each library needs for the op: minicnn's forward adds the bias inside
//     the kernel, cuDNN's is cudnnConvolutionForward + cudnnAddTensor; backward-filter is dW and db
//     for both (cuDNN: BackwardFilter + BackwardBias); max pooling forward is minicnn's training
//     path (it also writes the first-max mask), backward routes by that mask (cuDNN recomputes the
//     argmax from x and y);
//   - timing: warm-up, then per repetition an L2 flush (a memset of twice the L2 size), CUDA events
//     around the op alone, and the median over the repetitions;
//   - LeNet's convolutions also run as the training engine runs them, with ReLU and 2x2 max pooling
//     (op conv_relu_pool_fwd): minicnn's one kernel against cuDNN's convolution, bias, ReLU and
//     pooling calls.
// The TF32 and determinism settings and the chosen cuDNN algorithms are written into the results.
#if defined(MINICNN_BENCH_CUDNN)

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <cuda_runtime.h>
#include <cudnn.h>
#if __has_include(<nvtx3/nvToolsExt.h>)
#include <nvtx3/nvToolsExt.h>
#define BENCH_NVTX_PUSH(name) nvtxRangePushA(name)
#define BENCH_NVTX_POP() nvtxRangePop()
#else
#define BENCH_NVTX_PUSH(name) ((void)(name))
#define BENCH_NVTX_POP() ((void)0)
#endif

#include "bench_common.h"
#include "gpu_memory.h"
#include "minicnn/cuda_backend.h"
#include "minicnn/error.h"

namespace minicnn::bench {
namespace {

void check_cuda(cudaError_t e, const char* expr, const char* file, int line) {
    if (e != cudaSuccess) {
        std::ostringstream os;
        os << file << ":" << line << ": " << expr << " failed: " << cudaGetErrorString(e);
        throw DeviceError(os.str());
    }
}
void check_cudnn(cudnnStatus_t s, const char* expr, const char* file, int line) {
    if (s != CUDNN_STATUS_SUCCESS) {
        std::ostringstream os;
        os << file << ":" << line << ": " << expr << " failed: " << cudnnGetErrorString(s);
        throw DeviceError(os.str());
    }
}
#define BENCH_CUDA_CHECK(expr) check_cuda((expr), #expr, __FILE__, __LINE__)
#define BENCH_CUDNN_CHECK(expr) check_cudnn((expr), #expr, __FILE__, __LINE__)

using cuda::DeviceBuffer;  // the library's move-only owner of device memory (cuda/gpu_memory.h)

// A device copy of `host` on `stream`; `what` names it if memory runs out. Pageable host memory may
// be reused as soon as this returns.
template <class T>
DeviceBuffer<T> upload(const std::vector<T>& host, const char* what, cudaStream_t stream) {
    DeviceBuffer<T> buf(host.size(), what);
    buf.copy_from(host.data(), host.size(), stream);
    return buf;
}
// The whole of `buf` on the host: copied on `stream`, which this waits for.
template <class T>
std::vector<T> download(const DeviceBuffer<T>& buf, cudaStream_t stream) {
    std::vector<T> host(buf.size());
    buf.copy_to(host.data(), host.size(), stream);
    BENCH_CUDA_CHECK(cudaStreamSynchronize(stream));
    return host;
}

// Owns the stream, the cuDNN handle, the timing events and the L2 flush buffer.
class GpuBench {
public:
    GpuBench() {
        BENCH_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        BENCH_CUDNN_CHECK(cudnnCreate(&handle_));
        BENCH_CUDNN_CHECK(cudnnSetStream(handle_, stream_));
        BENCH_CUDA_CHECK(cudaEventCreate(&start_));
        BENCH_CUDA_CHECK(cudaEventCreate(&stop_));
        int dev = 0, l2 = 0;
        BENCH_CUDA_CHECK(cudaGetDevice(&dev));
        BENCH_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
        flush_ = DeviceBuffer<unsigned char>(std::size_t(std::max(l2, 1 << 20)) * 2, "L2 flush");
    }
    ~GpuBench() {
        cudaEventDestroy(start_);
        cudaEventDestroy(stop_);
        cudnnDestroy(handle_);
        cudaStreamDestroy(stream_);
    }
    GpuBench(const GpuBench&) = delete;
    GpuBench& operator=(const GpuBench&) = delete;

    cudaStream_t stream() const { return stream_; }
    cudnnHandle_t handle() const { return handle_; }
    void sync() { BENCH_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

    // `warmup` untimed calls, then `reps` calls each after an L2 flush, timed with events. Each
    // timed call sits in an NVTX range named `label` (for Nsight Systems).
    Timing time(const std::function<void()>& fn, const std::string& label, int reps,
                int warmup = 3) {
        for (int i = 0; i < warmup; ++i) fn();
        BENCH_CUDA_CHECK(cudaGetLastError());
        std::vector<double> ms;
        for (int r = 0; r < reps; ++r) {
            BENCH_CUDA_CHECK(cudaMemsetAsync(flush_.data(), r & 0xff, flush_.bytes(), stream_));
            BENCH_NVTX_PUSH(label.c_str());
            BENCH_CUDA_CHECK(cudaEventRecord(start_, stream_));
            fn();
            BENCH_CUDA_CHECK(cudaEventRecord(stop_, stream_));
            BENCH_NVTX_POP();
            BENCH_CUDA_CHECK(cudaEventSynchronize(stop_));
            float t = 0.f;
            BENCH_CUDA_CHECK(cudaEventElapsedTime(&t, start_, stop_));
            ms.push_back(double(t));
        }
        BENCH_CUDA_CHECK(cudaGetLastError());
        return summarize(std::move(ms));
    }

private:
    cudaStream_t stream_ = nullptr;
    cudnnHandle_t handle_ = nullptr;
    cudaEvent_t start_ = nullptr, stop_ = nullptr;
    DeviceBuffer<unsigned char> flush_;
};

// RAII wrappers for the cuDNN descriptors used here.
struct TensorDesc {
    cudnnTensorDescriptor_t d = nullptr;
    TensorDesc(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w) {
        BENCH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
        BENCH_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, int(n),
                                                     int(c), int(h), int(w)));
    }
    ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
    TensorDesc(const TensorDesc&) = delete;
    TensorDesc& operator=(const TensorDesc&) = delete;
};
struct FilterDesc {
    cudnnFilterDescriptor_t d = nullptr;
    FilterDesc(std::int64_t k, std::int64_t c, int kh, int kw) {  // NHWC filter: (k, kh, kw, c)
        BENCH_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d));
        BENCH_CUDNN_CHECK(cudnnSetFilter4dDescriptor(d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, int(k),
                                                     int(c), kh, kw));
    }
    ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
    FilterDesc(const FilterDesc&) = delete;
    FilterDesc& operator=(const FilterDesc&) = delete;
};
struct ConvDesc {
    cudnnConvolutionDescriptor_t d = nullptr;
    explicit ConvDesc(const ConvGeom& g) {
        BENCH_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
        BENCH_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
            d, g.ph, g.pw, g.sh, g.sw, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
        BENCH_CUDNN_CHECK(cudnnSetConvolutionMathType(d, CUDNN_FMA_MATH));  // no TF32
    }
    ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
    ConvDesc(const ConvDesc&) = delete;
    ConvDesc& operator=(const ConvDesc&) = delete;
};
struct PoolDesc {
    cudnnPoolingDescriptor_t d = nullptr;
    explicit PoolDesc(const PoolGeom& g) {
        BENCH_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&d));
        BENCH_CUDNN_CHECK(cudnnSetPooling2dDescriptor(d, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN,
                                                      g.kh, g.kw, 0, 0, g.sh, g.sw));
    }
    ~PoolDesc() { cudnnDestroyPoolingDescriptor(d); }
    PoolDesc(const PoolDesc&) = delete;
    PoolDesc& operator=(const PoolDesc&) = delete;
};

struct ReluDesc {
    cudnnActivationDescriptor_t d = nullptr;
    ReluDesc() {
        BENCH_CUDNN_CHECK(cudnnCreateActivationDescriptor(&d));
        BENCH_CUDNN_CHECK(
            cudnnSetActivationDescriptor(d, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    }
    ~ReluDesc() { cudnnDestroyActivationDescriptor(d); }
    ReluDesc(const ReluDesc&) = delete;
    ReluDesc& operator=(const ReluDesc&) = delete;
};

bool is_tensor_op(cudnnMathType_t m) {
    return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// The fastest successful non-tensor-op algorithm of a cudnnFind*Algorithm result list.
template <class Perf>
const Perf& pick(const std::vector<Perf>& perf, int returned, const char* what) {
    for (int i = 0; i < returned; ++i)
        if (perf[std::size_t(i)].status == CUDNN_STATUS_SUCCESS &&
            !is_tensor_op(perf[std::size_t(i)].mathType))
            return perf[std::size_t(i)];
    throw DeviceError(std::string("cuDNN offers no FMA-math algorithm for ") + what);
}

// cuDNN's fastest FMA-math forward algorithm for these descriptors.
cudnnConvolutionFwdAlgoPerf_t find_forward(cudnnHandle_t h, const TensorDesc& x_d,
                                           const FilterDesc& w_d, const ConvDesc& conv_d,
                                           const TensorDesc& y_d) {
    int max_algos = 0, returned = 0;
    BENCH_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_algos));
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(std::size_t(std::max(max_algos, 1)));
    BENCH_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithm(h, x_d.d, w_d.d, conv_d.d, y_d.d,
                                                           max_algos, &returned, perf.data()));
    return pick(perf, returned, "convolution forward");
}

std::string algo_str(const char* kind, int algo, cudnnDeterminism_t det, std::size_t ws) {
    std::ostringstream os;
    os << kind << " algo " << algo << (det == CUDNN_DETERMINISTIC ? " (deterministic" : " (non-det")
       << ", workspace " << ws << " B)";
    return os.str();
}

// (kh, kw, c, k) <-> (k, kh, kw, c)
std::vector<float> hwio_to_khwc(const std::vector<float>& w, const ConvGeom& g) {
    std::vector<float> o(w.size());
    const std::int64_t hwc = std::int64_t(g.kh) * g.kw * g.c;
    for (std::int64_t s = 0; s < hwc; ++s)
        for (std::int64_t k = 0; k < g.k; ++k)
            o[std::size_t(k * hwc + s)] = w[std::size_t(s * g.k + k)];
    return o;
}
std::vector<float> khwc_to_hwio(const std::vector<float>& w, const ConvGeom& g) {
    std::vector<float> o(w.size());
    const std::int64_t hwc = std::int64_t(g.kh) * g.kw * g.c;
    for (std::int64_t s = 0; s < hwc; ++s)
        for (std::int64_t k = 0; k < g.k; ++k)
            o[std::size_t(s * g.k + k)] = w[std::size_t(k * hwc + s)];
    return o;
}

void print_row(const Layer& l, const std::string& op, const Timing& m, const Timing& c,
               const std::string& valid) {
    const double flops = op_flops(l, op), bytes = op_bytes(l, op);
    const double work = flops > 0 ? flops : bytes;
    std::printf("%-16s %5lld %-16s %10.4f %10.4f %10.1f %10.1f %7.2f  %s\n", l.name.c_str(),
                static_cast<long long>(l.batch()), op.c_str(), m.median_ms, c.median_ms,
                work / (m.median_ms * 1e6), work / (c.median_ms * 1e6), c.median_ms / m.median_ms,
                valid.c_str());
    std::fflush(stdout);
}

void add_pair(std::vector<std::string>& out, const Layer& l, const std::string& op, const Timing& m,
              const Timing& c, const Compare& cmp, const std::string& algo) {
    JsonObject jm = result_json(l, op, "minicnn-cuda", m);
    jm.boolean("validated", cmp.ok).num("max_abs_err_vs_cudnn", cmp.max_abs_err);
    JsonObject jc = result_json(l, op, "cudnn", c);
    jc.boolean("validated", cmp.ok).str("algo", algo).str("math", "CUDNN_FMA_MATH");
    out.push_back(jm.dump());
    out.push_back(jc.dump());
    print_row(l, op, m, c, compare_str(cmp));
}

void bench_conv(GpuBench& gb, const Layer& l, const Options& o, std::vector<std::string>& out) {
    const ConvGeom g = l.conv;
    const cudaStream_t s = gb.stream();
    const cudnnHandle_t h = gb.handle();
    const auto h_inp = layer_tensor(l, kInp, g.in_numel());
    const auto h_w = layer_tensor(l, kWeight, g.weight_numel());
    const auto h_b = layer_tensor(l, kBias, g.k);
    const auto h_dout = layer_tensor(l, kDout, g.out_numel());
    auto inp = upload(h_inp, "conv inp", s);                       // (n, h, w, c)
    auto w = upload(h_w, "conv w", s);                             // (kh, kw, c, k)
    auto w_khwc = upload(hwio_to_khwc(h_w, g), "conv w_khwc", s);  // (k, kh, kw, c) for cuDNN
    auto b = upload(h_b, "conv b", s);                             // (k)
    auto dout = upload(h_dout, "conv dout", s);                    // (n, oh, ow, k)
    DeviceBuffer<float> out_m(std::size_t(g.out_numel()), "conv out_m"),
        out_c(std::size_t(g.out_numel()), "conv out_c");
    DeviceBuffer<float> dinp_m(std::size_t(g.in_numel()), "conv dinp_m"),
        dinp_c(std::size_t(g.in_numel()), "conv dinp_c");
    DeviceBuffer<float> dw_m(std::size_t(g.weight_numel()), "conv dw_m"),
        dw_c(std::size_t(g.weight_numel()), "conv dw_c");
    DeviceBuffer<float> db_m(std::size_t(g.k), "conv db_m"), db_c(std::size_t(g.k), "conv db_c");
    DeviceBuffer<unsigned char> ws_m(cuda::conv2d_backward_filter_workspace(g),
                                     "conv backward-filter workspace");

    TensorDesc x_d(g.n, g.c, g.h, g.w), y_d(g.n, g.k, g.oh, g.ow), b_d(1, g.k, 1, 1);
    FilterDesc w_d(g.k, g.c, g.kh, g.kw);
    ConvDesc conv_d(g);

    const auto fwd = find_forward(h, x_d, w_d, conv_d, y_d);
    int max_algos = 0, returned = 0;
    BENCH_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max_algos));
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> bd_perf(std::size_t(std::max(max_algos, 1)));
    BENCH_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(
        h, w_d.d, y_d.d, conv_d.d, x_d.d, max_algos, &returned, bd_perf.data()));
    const auto bd = pick(bd_perf, returned, "convolution backward data");
    BENCH_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max_algos));
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> bf_perf(std::size_t(std::max(max_algos, 1)));
    BENCH_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(
        h, x_d.d, y_d.d, conv_d.d, w_d.d, max_algos, &returned, bf_perf.data()));
    const auto bf = pick(bf_perf, returned, "convolution backward filter");
    DeviceBuffer<unsigned char> ws_c(std::max({fwd.memory, bd.memory, bf.memory}),
                                     "cuDNN workspace");

    const float one = 1.f, zero = 0.f;
    const std::string ops[3] = {"conv_fwd", "conv_bwd_data", "conv_bwd_filter"};
    std::function<void()> mini[3] = {
        [&] {
            cuda::conv2d_forward(out_m.data(), inp.data(), w.data(), b.data(), g,
                                 Activation::linear, s);
        },
        [&] { cuda::conv2d_backward_data(dinp_m.data(), dout.data(), w.data(), g, s); },
        [&] {
            cuda::conv2d_backward_filter(dw_m.data(), db_m.data(), dout.data(), inp.data(), g,
                                         ws_m.data(), s);
        }};
    std::function<void()> cudnn[3] = {
        [&] {
            BENCH_CUDNN_CHECK(cudnnConvolutionForward(
                h, &one, x_d.d, inp.data(), w_d.d, w_khwc.data(), conv_d.d, fwd.algo, ws_c.data(),
                ws_c.bytes(), &zero, y_d.d, out_c.data()));
            BENCH_CUDNN_CHECK(cudnnAddTensor(h, &one, b_d.d, b.data(), &one, y_d.d, out_c.data()));
        },
        [&] {
            BENCH_CUDNN_CHECK(cudnnConvolutionBackwardData(
                h, &one, w_d.d, w_khwc.data(), y_d.d, dout.data(), conv_d.d, bd.algo, ws_c.data(),
                ws_c.bytes(), &zero, x_d.d, dinp_c.data()));
        },
        [&] {
            BENCH_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
                h, &one, x_d.d, inp.data(), y_d.d, dout.data(), conv_d.d, bf.algo, ws_c.data(),
                ws_c.bytes(), &zero, w_d.d, dw_c.data()));
            BENCH_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, y_d.d, dout.data(), &zero,
                                                           b_d.d, db_c.data()));
        }};
    const std::string algos[3] = {algo_str("fwd", int(fwd.algo), fwd.determinism, fwd.memory),
                                  algo_str("bwd_data", int(bd.algo), bd.determinism, bd.memory),
                                  algo_str("bwd_filter", int(bf.algo), bf.determinism, bf.memory)};

    for (int i = 0; i < 3; ++i) {
        // Validate first: one call of each, then compare on the host.
        mini[i]();
        cudnn[i]();
        BENCH_CUDA_CHECK(cudaGetLastError());
        gb.sync();
        const std::int64_t red = reduction_len(l, ops[i]);
        Compare cmp;
        if (i == 0) {
            cmp = compare(download(out_m, s).data(), download(out_c, s).data(), g.out_numel(), red);
        } else if (i == 1) {
            cmp =
                compare(download(dinp_m, s).data(), download(dinp_c, s).data(), g.in_numel(), red);
        } else {
            const auto dw_ref = khwc_to_hwio(download(dw_c, s), g);
            cmp = compare(download(dw_m, s).data(), dw_ref.data(), g.weight_numel(), red);
            const Compare cb =
                compare(download(db_m, s).data(), download(db_c, s).data(), g.k, g.n * g.oh * g.ow);
            if (!cb.ok) cmp = cb;
        }
        const Timing tm = gb.time(mini[i], "minicnn " + layer_id(l) + " " + ops[i], o.gpu_reps);
        const Timing tc = gb.time(cudnn[i], "cudnn " + layer_id(l) + " " + ops[i], o.gpu_reps);
        add_pair(out, l, ops[i], tm, tc, cmp, algos[i]);
    }
}

// A LeNet convolution with its ReLU and 2x2 max pooling, as the training engine runs it: minicnn's
// one kernel (conv2d_maxpool_forward, which also writes the argmax mask; the convolution's output
// never reaches memory) against cuDNN's four calls (convolution, bias, ReLU in place, pooling),
// validated on the pooled output. Op "conv_relu_pool_fwd"; its work is the convolution's FLOPs.
void bench_conv_pool(GpuBench& gb, const Layer& l, const Options& o,
                     std::vector<std::string>& out) {
    const ConvGeom g = l.conv;
    const PoolGeom pg = pool_geometry(g.out_shape(), Window{2, 2}, Stride{2, 2}, l.name.c_str());
    const cudaStream_t s = gb.stream();
    const cudnnHandle_t h = gb.handle();
    const auto h_w = layer_tensor(l, kWeight, g.weight_numel());
    auto inp = upload(layer_tensor(l, kInp, g.in_numel()), "conv_pool inp", s);
    auto w = upload(h_w, "conv_pool w", s);
    auto w_khwc = upload(hwio_to_khwc(h_w, g), "conv_pool w_khwc", s);
    auto b = upload(layer_tensor(l, kBias, g.k), "conv_pool b", s);
    DeviceBuffer<float> pooled_m(std::size_t(pg.out_numel()), "conv_pool pooled_m"),
        pooled_c(std::size_t(pg.out_numel()), "conv_pool pooled_c");
    DeviceBuffer<float> conv_c(std::size_t(g.out_numel()), "conv_pool cuDNN convolution");
    DeviceBuffer<std::int32_t> mask(std::size_t(pg.out_numel()), "conv_pool mask");
    TensorDesc x_d(g.n, g.c, g.h, g.w), y_d(g.n, g.k, g.oh, g.ow), b_d(1, g.k, 1, 1),
        p_d(pg.n, pg.c, pg.oh, pg.ow);
    FilterDesc w_d(g.k, g.c, g.kh, g.kw);
    ConvDesc conv_d(g);
    PoolDesc pool_d(pg);
    ReluDesc relu_d;
    const auto fwd = find_forward(h, x_d, w_d, conv_d, y_d);
    DeviceBuffer<unsigned char> ws_c(std::max<std::size_t>(fwd.memory, 1), "cuDNN workspace");
    const float one = 1.f, zero = 0.f;
    const std::string op = "conv_relu_pool_fwd";
    auto mini = [&] {
        cuda::conv2d_maxpool_forward(pooled_m.data(), mask.data(), inp.data(), w.data(), b.data(),
                                     g, Activation::relu, pg, s);
    };
    auto cudnn = [&] {
        BENCH_CUDNN_CHECK(cudnnConvolutionForward(h, &one, x_d.d, inp.data(), w_d.d, w_khwc.data(),
                                                  conv_d.d, fwd.algo, ws_c.data(), ws_c.bytes(),
                                                  &zero, y_d.d, conv_c.data()));
        BENCH_CUDNN_CHECK(cudnnAddTensor(h, &one, b_d.d, b.data(), &one, y_d.d, conv_c.data()));
        BENCH_CUDNN_CHECK(cudnnActivationForward(h, relu_d.d, &one, y_d.d, conv_c.data(), &zero,
                                                 y_d.d, conv_c.data()));
        BENCH_CUDNN_CHECK(cudnnPoolingForward(h, pool_d.d, &one, y_d.d, conv_c.data(), &zero, p_d.d,
                                              pooled_c.data()));
    };
    mini();
    cudnn();
    BENCH_CUDA_CHECK(cudaGetLastError());
    gb.sync();
    const Compare cmp = compare(download(pooled_m, s).data(), download(pooled_c, s).data(),
                                pg.out_numel(), reduction_len(l, "conv_fwd"));
    const Timing tm = gb.time(mini, "minicnn " + layer_id(l) + " " + op, o.gpu_reps);
    const Timing tc = gb.time(cudnn, "cudnn " + layer_id(l) + " " + op, o.gpu_reps);
    add_pair(out, l, op, tm, tc, cmp,
             algo_str("fwd", int(fwd.algo), fwd.determinism, fwd.memory) +
                 " + AddTensor + ReLU + max pool");
}

void bench_pool(GpuBench& gb, const Layer& l, const Options& o, std::vector<std::string>& out) {
    const PoolGeom g = l.pool;
    const cudaStream_t s = gb.stream();
    const cudnnHandle_t h = gb.handle();
    auto inp = upload(layer_tensor(l, kInp, g.in_numel()), "pool inp", s);      // (n,h,w,c)
    auto dout = upload(layer_tensor(l, kDout, g.out_numel()), "pool dout", s);  // (n,oh,ow,c)
    DeviceBuffer<float> out_m(std::size_t(g.out_numel()), "pool out_m"),
        out_c(std::size_t(g.out_numel()), "pool out_c");
    DeviceBuffer<std::int32_t> mask(std::size_t(g.out_numel()), "pool mask");
    DeviceBuffer<float> dinp_m(std::size_t(g.in_numel()), "pool dinp_m"),
        dinp_c(std::size_t(g.in_numel()), "pool dinp_c");
    TensorDesc x_d(g.n, g.c, g.h, g.w), y_d(g.n, g.c, g.oh, g.ow);
    PoolDesc p_d(g);
    const float one = 1.f, zero = 0.f;

    const std::string ops[2] = {"pool_fwd", "pool_bwd"};
    std::function<void()> mini[2] = {
        [&] { cuda::maxpool2d_forward(out_m.data(), mask.data(), inp.data(), g, s); },
        [&] { cuda::maxpool2d_backward_mask(dinp_m.data(), dout.data(), mask.data(), g, s); }};
    std::function<void()> cudnn[2] = {
        [&] {
            BENCH_CUDNN_CHECK(
                cudnnPoolingForward(h, p_d.d, &one, x_d.d, inp.data(), &zero, y_d.d, out_c.data()));
        },
        [&] {
            BENCH_CUDNN_CHECK(cudnnPoolingBackward(h, p_d.d, &one, y_d.d, out_c.data(), y_d.d,
                                                   dout.data(), x_d.d, inp.data(), &zero, x_d.d,
                                                   dinp_c.data()));
        }};
    // The forward outputs (mask, y) are what the backward passes read: run both forwards first.
    mini[0]();
    cudnn[0]();
    for (int i = 0; i < 2; ++i) {
        mini[i]();
        cudnn[i]();
        BENCH_CUDA_CHECK(cudaGetLastError());
        gb.sync();
        const Compare cmp =
            i == 0
                ? compare(download(out_m, s).data(), download(out_c, s).data(), g.out_numel(), 1)
                : compare(download(dinp_m, s).data(), download(dinp_c, s).data(), g.in_numel(), 1);
        const Timing tm = gb.time(mini[i], "minicnn " + layer_id(l) + " " + ops[i], o.gpu_reps);
        const Timing tc = gb.time(cudnn[i], "cudnn " + layer_id(l) + " " + ops[i], o.gpu_reps);
        add_pair(out, l, ops[i], tm, tc, cmp, "CUDNN_POOLING_MAX");
    }
}

}  // namespace

std::vector<std::string> run_gpu(const Options& o, std::string* skip_reason, std::string* device) {
    std::vector<std::string> out;
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        *skip_reason = e != cudaSuccess
                           ? std::string("no usable CUDA device: ") + cudaGetErrorString(e)
                           : std::string("no CUDA device visible");
        cudaGetLastError();  // clear the sticky-free error so later calls are not confused
        return out;
    }
    cudaDeviceProp prop{};
    BENCH_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    int driver = 0, runtime = 0;
    BENCH_CUDA_CHECK(cudaDriverGetVersion(&driver));
    BENCH_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
    const char* tf32 = std::getenv("NVIDIA_TF32_OVERRIDE");
    {
        std::ostringstream os;
        os << prop.name << " (sm_" << prop.major << prop.minor << ", " << prop.multiProcessorCount
           << " SMs, L2 " << prop.l2CacheSize / (1024 * 1024) << " MiB), CUDA driver " << driver
           << ", runtime " << runtime << ", cuDNN " << cudnnGetVersion()
           << ", NVIDIA_TF32_OVERRIDE=" << (tf32 ? tf32 : "unset");
        *device = os.str();
    }
    std::printf("GPU: %s\n", device->c_str());
    std::printf("%-16s %5s %-16s %10s %10s %10s %10s %7s  %s\n", "layer", "batch", "op", "mini ms",
                "cudnn ms", "mini rate", "cudnn rate", "cud/mini", "validation");
    GpuBench gb;
    for (const Layer& l : all_layers()) {
        if (!selected(o, l)) continue;
        if (l.kind == LayerKind::conv) {
            bench_conv(gb, l, o, out);
            // LeNet's convolutions are followed by 2x2 max pooling: time the fused forward too.
            if (l.name.rfind("lenet_conv", 0) == 0) bench_conv_pool(gb, l, o, out);
        } else
            bench_pool(gb, l, o, out);
    }
    return out;
}

}  // namespace minicnn::bench

#endif  // MINICNN_BENCH_CUDNN
