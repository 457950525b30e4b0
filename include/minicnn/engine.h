// minicnn/engine.h — the training engine: one memory space, the operations the layers, the loss
// and the optimiser need, on raw float pointers that live in that memory space, and the plan
// (minicnn/plan.h) that runs a model's layers on them.
//
// Two engines implement it: CpuEngine (host/cpu/engine_cpu.cpp: the CPU backend's im2col + SGEMM
// over fixed batch chunks on one thread pool, deterministic for any thread count) and CudaEngine
// (cuda/engine_cuda.h: the direct-tiled kernels of minicnn/cuda_backend.h, the dense-layer kernels
// of cuda/dense.cu, and cuda/train_kernels.cu for the loss, Adam, the batch gather, the metrics
// and the epoch permutation). Both engines draw the same permutation
// (minicnn/detail/permutation.h).
//
// The operations here are one layer each (a layer's activation included). Which layers run
// together is the engine's own business: plan() turns a model into stages, and the CUDA engine's
// plan fuses (cuda/plan_cuda.cpp); nothing here names a fused operation.
//
// Rules every engine keeps (and the trainer relies on):
//   - All memory is allocated before training (alloc, reserve, plan); no operation allocates.
//   - No operation synchronises the host with the device except download() and synchronize().
//   - Outputs are overwritten, never accumulated into, except the metrics accumulator.
//   - Per-step values that change from step to step (the Adam step, the batch cursor) are read from
//     engine memory (StepCounters), not passed as arguments, so one training step is a fixed
//     sequence of launches that a CUDA graph can capture (capture()).
//   - A CUDA operation that needs more scratch than reserve_conv / reserve_loss reserved throws
//     ArgumentError (what was reserved, what is needed) instead of allocating. (The CPU engine's
//     operations grow their host scratch on a first call with a larger shape; no graph records
//     them.)
//   - Reductions run in a fixed order: the same inputs give bit-identical outputs.
//   - The CUDA engine runs every call on its own device, whatever device is current on the calling
//     thread, and leaves the caller's current device as it was.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "minicnn/activation.h"
#include "minicnn/device.h"
#include "minicnn/error.h"
#include "minicnn/geometry.h"

namespace minicnn {

// Adam hyper-parameters (docs/training.md: 1e-3, 0.9, 0.999, 1e-7). The update is the Keras/TF form:
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
struct AdamConfig {
    float lr = 1e-3f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-7f;
};

// Counters read and advanced on the device during an epoch (live in engine memory).
struct StepCounters {
    std::int64_t step = 0;    // Adam steps taken so far (t of the next update is step + 1)
    std::int64_t cursor = 0;  // position in the epoch's permutation of the next batch
};

// What a training forward draws its random numbers from (Dropout, minicnn/detail/dropout.h): the
// run's seed, the step counter in engine memory (read when the step runs, so that a recorded graph
// draws new units at every replay), and the position of this rank's first sample in the global
// batch (0 on one process), so that the ranks together draw what one process would.
struct TrainingStep {
    std::uint64_t seed = 0;
    const StepCounters* counters = nullptr;
    std::int64_t first_sample = 0;
};

// Loss and accuracy accumulated over an epoch (live in engine memory, read at a progress tick).
struct Metrics {
    double loss_sum = 0.0;  // sum of per-sample cross-entropies
    double correct = 0.0;   // number of samples whose argmax equals the label
    double count = 0.0;     // number of samples seen
};

// A recorded sequence of engine operations (a CUDA graph), replayed by launch() on the engine's
// stream: the operations' arguments are those of the recording, the memory they point to is read
// at replay. Destroyed before its engine; the destructor never throws.
class EngineGraph {
public:
    virtual ~EngineGraph() = default;
    virtual void launch() = 0;
};

class Communicator;  // minicnn/distributed.h
class Plan;          // minicnn/plan.h
class Sequential;    // minicnn/model.h

// Sums n floats at data (engine memory) over the ranks of a communicator, in place: every rank
// calls sum() with the same n, and every rank then holds the same sum. Made by
// Engine::make_allreduce; destroyed before its engine. A rank that gets no answer from the others
// within the communicator's timeout_s() throws (it never waits for ever).
class EngineAllReduce {
public:
    virtual ~EngineAllReduce() = default;
    virtual void sum(float* data, std::int64_t n) = 0;
};

class Engine {
public:
    virtual ~Engine() = default;

    virtual Backend backend() const = 0;
    // A one-line description: "cpu (2 threads, OpenBLAS sgemm)", "cuda:0 (NVIDIA H100 80GB HBM3)".
    virtual std::string name() const = 0;

    // ---- memory ---------------------------------------------------------------------------------
    virtual void* alloc_bytes(std::size_t bytes) = 0;  // zero-filled, 256-byte aligned
    virtual void free_bytes(void* p) noexcept = 0;
    // The bytes this engine could still allocate: the GPU's free memory (cudaMemGetInfo) for the
    // CUDA engine, host_memory_available() (minicnn/memory.h) for the CPU engine.
    virtual std::size_t free_memory() = 0;
    // The bytes held in EngineBuffers of this engine now, and the most held at once so far (what
    // a trainer allocates: parameters, gradients, Adam's moments, the plan's buffers, the batch,
    // the data sets copied to it; not the engine's own scratch, reserve_conv's workspace).
    std::size_t buffer_bytes() const { return buffer_bytes_; }
    std::size_t peak_buffer_bytes() const { return peak_buffer_bytes_; }
    virtual void upload(void* dst, const void* host_src, std::size_t bytes) = 0;
    // Waits for all queued work, then copies.
    virtual void download(void* host_dst, const void* src, std::size_t bytes) = 0;
    virtual void copy(void* dst, const void* src, std::size_t bytes) = 0;
    virtual void fill_zero(void* dst, std::size_t bytes) = 0;
    virtual void synchronize() = 0;

    // Records the operations `enqueue` issues on this engine into a graph without running them, or
    // returns nullptr when the engine has no graphs (the CPU engine; CUDA builds that synchronise
    // after every launch): the caller then runs enqueue() itself. Nothing enqueue() issues may
    // allocate or synchronise. If enqueue() throws, the recording is discarded and the exception
    // passes through.
    virtual std::unique_ptr<EngineGraph> capture(const std::function<void()>& enqueue) = 0;

    // The sum of a float array in this engine's memory over the ranks of `comm`
    // (minicnn/distributed.h), in order with the engine's other operations. The default, for an
    // engine whose memory is host memory (the CPU engine): synchronize(), then
    // comm.allreduce_sum. The CUDA engine overrides it with NCCL on its stream.
    virtual std::unique_ptr<EngineAllReduce> make_allreduce(Communicator& comm);

    // Reserves the scratch memory the convolution / dense operations and the loss (softmax_xent
    // over up to n samples) need for these shapes and every smaller batch (called when a model is
    // set up for a batch size; a CUDA operation on a larger shape is an ArgumentError).
    // Reservations only grow.
    virtual void reserve_conv(const ConvGeom& g) = 0;
    virtual void reserve_dense(std::int64_t n, std::int64_t n_in, std::int64_t n_out) = 0;
    virtual void reserve_loss(std::int64_t n) = 0;

    // ---- layers (shapes as in minicnn/cpu_backend.h) ------------------------------------------
    // out (n, oh, ow, k) = act(conv(inp (n, h, w, c), weight (kh, kw, c, k)) + bias (k)).
    virtual void conv2d_forward(float* out, const float* inp, const float* weight,
                                const float* bias, const ConvGeom& g, Activation act) = 0;
    // From dy (n, oh, ow, k), the gradient with respect to the layer's output out = act(z):
    // dweight (kh, kw, c, k), dbias (k) and, when dinp is not null, dinp (n, h, w, c). With act
    // linear, dy is the gradient with respect to z itself and out may be null. dy may be
    // overwritten (an engine may form dz = act'(out) * dy in place, or fold act' into its loads).
    virtual void conv2d_backward(float* dinp, float* dweight, float* dbias, float* dy,
                                 const float* out, Activation act, const float* inp,
                                 const float* weight, const ConvGeom& g) = 0;

    // out (n, oh, ow, c); mask (n, oh, ow, c) gets the first maximum's position a*kw + q.
    virtual void maxpool2d_forward(float* out, std::int32_t* mask, const float* inp,
                                   const PoolGeom& g) = 0;
    virtual void maxpool2d_backward(float* dinp, const float* dout, const std::int32_t* mask,
                                    const PoolGeom& g) = 0;
    virtual void avgpool2d_forward(float* out, const float* inp, const PoolGeom& g) = 0;
    virtual void avgpool2d_backward(float* dinp, const float* dout, const PoolGeom& g) = 0;

    // out (rows, cols) = act(in); softmax over each row. out may alias in.
    virtual void activation_forward(float* out, const float* in, std::int64_t rows,
                                    std::int64_t cols, Activation act) = 0;
    // din from dout and the forward output; din may alias dout.
    virtual void activation_backward(float* din, const float* dout, const float* out,
                                     std::int64_t rows, std::int64_t cols, Activation act) = 0;

    // out (n, n_out) = act(inp (n, n_in) @ weight (n_in, n_out) + bias (n_out)).
    virtual void dense_forward(float* out, const float* inp, const float* weight, const float* bias,
                               std::int64_t n, std::int64_t n_in, std::int64_t n_out,
                               Activation act) = 0;
    // From dy (n, n_out), the gradient with respect to out = act(z) (act linear: dy is dz, out may
    // be null): dweight = inp^T dz, dbias = column sums of dz, dinp = dz weight^T (when dinp is
    // not null). dy may be overwritten.
    virtual void dense_backward(float* dinp, float* dweight, float* dbias, float* dy,
                                const float* out, Activation act, const float* inp,
                                const float* weight, std::int64_t n, std::int64_t n_in,
                                std::int64_t n_out) = 0;

    // Inverted dropout of `count` floats, in training: element i is kept when
    // detail::dropout_keep(detail::dropout_key(t.seed, layer, t.counters->step), first + i,
    // detail::dropout_threshold(rate)) (minicnn/detail/dropout.h; first = t.first_sample *
    // sample_numel, the step read from engine memory), out = keep ? inp * dropout_scale(rate) : 0
    // and mask = keep (1 or 0). rate in [0, 1).
    virtual void dropout_forward(float* out, std::int32_t* mask, const float* inp,
                                 std::int64_t count, std::int64_t sample_numel, float rate,
                                 std::uint64_t layer, const TrainingStep& t) = 0;
    // dinp = mask ? dout * dropout_scale(rate) : 0; dinp may alias dout.
    virtual void dropout_backward(float* dinp, const float* dout, const std::int32_t* mask,
                                  std::int64_t count, float rate) = 0;

    // ---- the plan -----------------------------------------------------------------------------
    // The stages that run `model`'s layers on this engine for batches of up to max_batch samples,
    // with every buffer they need allocated and every reservation made (minicnn/plan.h). The
    // model's layers must be bound to parameter and gradient arenas in this engine's memory
    // (Layer::bind), which must outlive the plan. This default runs each layer as its own stage
    // (plan_layer_by_layer); the CUDA engine's plan fuses where its kernels can.
    virtual std::unique_ptr<Plan> plan(const Sequential& model, std::int64_t max_batch);

    // ---- loss, optimiser, data ----------------------------------------------------------------
    // probs (n, classes) is a softmax output, labels (n) in [0, classes). Fused categorical
    // cross-entropy: dlogits = (probs - onehot(labels)) / mean_over when dlogits is not null (the
    // gradient, with respect to the softmax input, of the mean loss over a batch of mean_over >= n
    // samples of which these n are a share: mean_over is n for a whole batch, the global batch
    // for one rank's share of it); metrics += (sum of -log(max(p_label, 1e-7)), number of argmax
    // hits, n).
    // When `step` is not null this is a training step's loss, and it also counts the step:
    // step->step += 1 and step->cursor += cursor_advance once the loss is done (the loss is the one
    // single-thread point of every training step, so the step needs no separate advance launch;
    // the batch gather has read the cursor before it).
    virtual void softmax_xent(float* dlogits, Metrics* metrics, const float* probs,
                              const std::int32_t* labels, std::int64_t n, std::int64_t classes,
                              std::int64_t mean_over, StepCounters* step,
                              std::int64_t cursor_advance) = 0;
    // One Adam update over the flat arenas params / grads / m / v of n floats, t = counters->step:
    // the number of this update, already counted (by the step's softmax_xent, or advance()).
    virtual void adam_update(float* params, const float* grads, float* m, float* v, std::int64_t n,
                             const AdamConfig& cfg, const StepCounters* counters) = 0;
    // x (batch, sample_numel) = images[perm[cursor + i]], y (batch) = labels[perm[cursor + i]].
    virtual void gather_batch(float* x, std::int32_t* y, const float* images,
                              const std::int32_t* labels, const std::int32_t* perm,
                              const StepCounters* counters, std::int64_t batch,
                              std::int64_t sample_numel) = 0;
    // The same from 8-bit images: x = detail::pixel_to_unit(pixels[...]) (v / 255.0f,
    // minicnn/detail/pixel.h), the same bits on every engine.
    virtual void gather_batch(float* x, std::int32_t* y, const std::uint8_t* pixels,
                              const std::int32_t* labels, const std::int32_t* perm,
                              const StepCounters* counters, std::int64_t batch,
                              std::int64_t sample_numel) = 0;
    // counters->step += 1 (when count_step), counters->cursor += batch. (A training step counts
    // itself in softmax_xent; this serves evaluation, and a step with no loss of its own.)
    virtual void advance(StepCounters* counters, std::int64_t batch, bool count_step) = 0;
    // perm (n) = the permutation of 0..n-1 determined by seed (the identity when shuffle is false):
    // detail::EpochPermutation (minicnn/detail/permutation.h), the same bits on every engine.
    // n <= 2^31.
    virtual void permutation(std::int32_t* perm, std::int64_t n, std::uint64_t seed,
                             bool shuffle) = 0;

private:
    template <class T>
    friend class EngineBuffer;
    void count_buffer(std::size_t added, std::size_t removed) noexcept {
        buffer_bytes_ = buffer_bytes_ + added - removed;
        peak_buffer_bytes_ = std::max(peak_buffer_bytes_, buffer_bytes_);
    }
    std::size_t buffer_bytes_ = 0, peak_buffer_bytes_ = 0;
};

// The engine for a device: CPU always; CUDA in CUDA builds with a visible GPU (else DeviceError).
std::unique_ptr<Engine> make_engine(const Device& device);
std::unique_ptr<Engine> make_cpu_engine();
// The CUDA engine on device `device_index`; DeviceError in a build without the CUDA backend.
std::unique_ptr<Engine> make_cuda_engine(int device_index);

// A move-only owner of engine memory (copies deleted to prevent performance accidents).
template <class T>
class EngineBuffer {
public:
    EngineBuffer() = default;
    EngineBuffer(Engine& e, std::int64_t n)
        : engine_(&e),
          n_(n),
          p_(static_cast<T*>(n > 0 ? e.alloc_bytes(checked_bytes(n)) : nullptr)) {
        if (p_) e.count_buffer(bytes(), 0);
    }
    EngineBuffer(EngineBuffer&& o) noexcept { swap(o); }
    EngineBuffer& operator=(EngineBuffer&& o) noexcept {
        EngineBuffer tmp(std::move(o));
        swap(tmp);
        return *this;
    }
    EngineBuffer(const EngineBuffer&) = delete;
    EngineBuffer& operator=(const EngineBuffer&) = delete;
    ~EngineBuffer() {
        if (p_ && engine_) {
            engine_->free_bytes(p_);
            engine_->count_buffer(0, bytes());
        }
    }

    T* data() const { return p_; }
    std::int64_t size() const { return n_; }
    std::size_t bytes() const { return std::size_t(n_) * sizeof(T); }

private:
    // n * sizeof(T), refusing a count whose byte size does not fit in size_t (it would wrap into a
    // small allocation that claims n elements).
    static std::size_t checked_bytes(std::int64_t n) {
        if (std::uint64_t(n) > std::numeric_limits<std::size_t>::max() / sizeof(T)) {
            throw DeviceError("out of memory: asked for " + std::to_string(n) + " elements of " +
                              std::to_string(sizeof(T)) +
                              " bytes, more bytes than the address space holds");
        }
        return std::size_t(n) * sizeof(T);
    }
    void swap(EngineBuffer& o) noexcept {
        std::swap(engine_, o.engine_);
        std::swap(n_, o.n_);
        std::swap(p_, o.p_);
    }
    Engine* engine_ = nullptr;
    std::int64_t n_ = 0;
    T* p_ = nullptr;
};

}  // namespace minicnn
