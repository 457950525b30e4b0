// minicnn/trainer.h — training a Sequential model on an Engine: fit / evaluate / predict, and the
// state a checkpoint holds.
//
// The trainer copies the model's parameter arena to the engine, allocates the gradient arena (same
// layout) and Adam's moments, has the engine plan the model for a batch size once (Engine::plan:
// the stages and their buffers, minicnn/plan.h), and copies the whole training set to the engine
// once per fit() (8-bit data stay 8-bit there: the batch gather scales them, DataView::pixels).
// Before it allocates anything for a fit, it checks that the run fits in the engine's memory
// (memory_need) and refuses one that does not. It runs the plan's stages and never learns which layers the engine fused. An epoch then runs without
// host<->device synchronisation: the permutation is drawn on the engine, each step gathers its
// batch through the permutation and a cursor held in engine memory, and loss/accuracy accumulate
// in engine memory; the host reads them only at a progress tick (every progress_interval_s) and at
// the end of the epoch.
//
// A training step (gather, forward, loss and step count, backward, Adam) is one function, enqueue_step,
// used by fit() and train_step(): a fixed sequence of launches that neither allocates nor
// synchronises. On the GPU, fit() records it as a CUDA graph once per batch size (the full batch,
// and the shorter last batch of an epoch; after one unrecorded warm-up step of that size) and
// replays the graph for every later step (FitOptions::cuda_graphs); the graphs are kept while
// what they recorded stays valid (the workspace, the data and permutation buffers, the Adam
// settings) and dropped when setup() plans again for a larger batch.
//
// Shuffling: epoch e (0-based) uses the permutation drawn from seed_for_epoch(seed, e), the same
// permutation on every engine (minicnn/detail/permutation.h). The RNG state a checkpoint stores is
// therefore (seed, epochs done): a resumed run draws the same permutations, and ends with weights
// bit-identical to those of an uninterrupted run on the same engine.
//
// Data-parallel (a Communicator of more than one rank, minicnn/distributed.h): fit() first gives
// every rank rank 0's training state (weights, Adam moments and step, epochs done, seed); each
// step, every rank gathers its share of the global batch (FitOptions::batch_size) from the same
// permutation, computes the gradient of the global batch's mean loss over its share, sums the
// gradient arena over the ranks (Engine::make_allreduce: MPI on the CPU, NCCL on GPUs) and takes
// the same Adam step. The epoch's metrics and the validation (split among the ranks) are summed
// over the ranks; at every epoch end the ranks compare a checksum of their weights (a mismatch is
// an Error naming the ranks). Only rank 0 writes the metrics file and the checkpoint; on_progress
// ticks report rank 0's share. No CUDA graphs then: a step runs its launches one by one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "minicnn/checkpoint.h"
#include "minicnn/device.h"
#include "minicnn/distributed.h"
#include "minicnn/engine.h"
#include "minicnn/idx.h"
#include "minicnn/model.h"
#include "minicnn/optim.h"
#include "minicnn/plan.h"
#include "minicnn/tensor.h"

namespace minicnn {

// Labelled samples in host memory: the images (n, per-sample shape) either as float32 (images) or
// as 8-bit pixels that the model sees as detail::pixel_to_unit(v) = v / 255.0f (pixels,
// minicnn/detail/pixel.h; a Dataset's, minicnn/idx.h), exactly one of the two; labels (n) int32 in
// [0, classes). Not owned. 8-bit data stay 8-bit in engine memory and are scaled as each batch is
// gathered.
struct DataView {
    const float* images = nullptr;
    const std::int32_t* labels = nullptr;
    std::int64_t n = 0;
    const std::uint8_t* pixels = nullptr;
};

// A Dataset's samples (minicnn/idx.h), 8-bit, as the trainer takes them.
DataView view_of(const Dataset& d);

// The engine memory a fit() will hold at once, in bytes, by what holds it (Trainer::memory_need).
struct MemoryNeed {
    std::size_t state = 0;  // parameters, gradients, Adam's two moments, the step counters, metrics
    std::size_t plan = 0;   // the plan's buffers for the batch size, and the batch (x, labels)
    std::size_t data = 0;   // the data sets copied to the engine (a GPU), the epoch permutation,
                            // and the validation's index of its samples (8-bit data)
    std::size_t total() const { return state + plan + data; }
};

struct EpochLog {
    int epoch = 0;  // 1-based
    double loss = 0, accuracy = 0;
    double val_loss = -1, val_accuracy = -1;  // -1 when there is no validation set
    double seconds = 0;      // training time of the epoch (wall clock, without validation)
    double cpu_seconds = 0;  // CPU time of the whole process during those seconds (all threads)
    double images_per_second = 0;
    std::int64_t steps = 0;
};

struct History {
    std::vector<EpochLog> epochs;
};

struct EvalResult {
    double loss = 0, accuracy = 0;
    std::int64_t count = 0;
    double seconds = 0;
};

// A progress tick inside an epoch (loss and accuracy so far in this epoch).
struct Progress {
    int epoch = 0, epochs = 0;  // epoch is 1-based
    std::int64_t step = 0, steps = 0;
    std::int64_t images = 0;
    double loss = 0, accuracy = 0;
    double elapsed_s = 0, images_per_second = 0, eta_s = 0;
};

struct FitOptions {
    int epochs = 5;  // the epoch to stop after (counting those done before a resume)
    int batch_size = 32;
    AdamConfig adam;
    std::uint64_t seed = 1;
    bool shuffle = true;
    double progress_interval_s = 0.25;
    std::function<void(const Progress&)> on_progress;  // may be empty
    // After each epoch and its validation, in this order: the epoch's row is appended to
    // metrics_path, the checkpoint is written to checkpoint_path (save_training_checkpoint), then
    // on_epoch_end is called, with the trainer's state that of the epoch's end. A diverged epoch
    // gets none of them. Each may be empty.
    //
    // metrics_path: a CSV file, the header
    //   epoch,loss,accuracy,val_loss,val_accuracy,seconds,images_per_second
    // and one row per epoch (val_* empty without validation). fit() opens it before training:
    // with no epochs done it starts the file over; otherwise it keeps the header and the rows of
    // the epochs done (a run killed after an epoch's row but before its checkpoint left a row
    // that is now trained again) and appends. The minicnn program's --metrics and Python's
    // fit(csv_path=...) are this file.
    std::string metrics_path;
    std::string checkpoint_path;
    std::function<void(const EpochLog&)> on_epoch_end;
    // GPU: record the training step as a CUDA graph once per batch size and replay it (one launch
    // per step instead of one per kernel); the results are bit-identical to false. Ignored on the
    // CPU.
    bool cuda_graphs = true;
};

// The 64-bit seed of epoch e's permutation (splitmix64 of seed and e).
std::uint64_t seed_for_epoch(std::uint64_t seed, int epoch);

// The lines a training run prints, the same in the minicnn program and the Python module:
//   progress_line, bar:    Epoch 1/5    312/1563 [=====>........................] - 5210 img/s -
//                          ETA 7.7s - loss: 0.6231 - accuracy: 0.7702
//   progress_line, no bar: Epoch 1/5 step 312/1563 - 5210 img/s - ETA 7.7s - loss: ... - accuracy: ...
//   epoch_line:            Epoch 1/5 - 1563 steps - 9.6s - 5208 img/s - loss: 0.5133 - accuracy:
//                          0.8127 - val_loss: 0.4021 - val_accuracy: 0.8544   (val_* with validation)
// `epochs` is FitOptions::epochs. No line break, no terminal control characters.
std::string progress_line(const Progress& p, bool bar);
std::string epoch_line(const EpochLog& e, int epochs);

class Trainer {
public:
    // The trainer keeps a reference to the model; pull_params() writes the engine's weights back.
    // comm: the ranks this trainer trains with (kept; null: a single process).
    explicit Trainer(Sequential& model, Device device = {}, Communicator* comm = nullptr);
    ~Trainer();
    Trainer(const Trainer&) = delete;
    Trainer& operator=(const Trainer&) = delete;

    Engine& engine() { return *engine_; }
    std::string device_name() const { return engine_->name(); }
    Backend backend() const { return engine_->backend(); }
    Sequential& model() { return *model_; }
    Communicator& communicator() { return *comm_; }

    // The engine memory fit(train, validation, opt) will hold at once (for opt.batch_size): the
    // plan's buffers are measured by planning the model for one sample (every plan buffer holds
    // max_batch samples). fit() compares it with what the engine has (Engine::free_memory(), plus
    // the buffers this trainer holds already) before it allocates anything for the run, and
    // refuses a run that does not fit with a DeviceError, one line giving both numbers, before it
    // touches the metrics file or the checkpoint.
    MemoryNeed memory_need(const DataView& train, const DataView* validation, int batch_size);

    // Trains from epochs_done() + 1 to opt.epochs. Throws Error (and calls no on_epoch_end for it)
    // when the loss or the weights become NaN or Inf. With more than one rank, every rank calls it
    // with the same options, and opt.batch_size must be a multiple of the number of ranks.
    History fit(const DataView& train, const DataView* validation, const FitOptions& opt);
    // With more than one rank, every rank calls it with the same data; each evaluates its share.
    EvalResult evaluate(const DataView& data, int batch_size = 256);
    // Softmax outputs (n, classes) for images (n, per-sample shape).
    Tensor predict(const float* images, std::int64_t n, int batch_size = 256);

    // One training step on a batch in host memory (x (n, sample), y (n)). Returns the batch's mean
    // loss. For tests and small experiments; fit() is the fast path.
    double train_step(const float* x, const std::int32_t* y, std::int64_t n, const AdamConfig& cfg);

    // Engine <-> model.params().
    void pull_params();
    void push_params();
    std::vector<float> gradients();  // the last step's gradient arena
    std::vector<float> adam_m() { return adam_->m_host(); }
    std::vector<float> adam_v() { return adam_->v_host(); }

    int epochs_done() const { return epochs_done_; }
    std::int64_t adam_steps();
    std::uint64_t seed() const { return seed_; }

    // The complete training state as a checkpoint: model spec and weights, Adam moments and step,
    // epochs done, the shuffle seed and the Adam hyper-parameters.
    Checkpoint to_checkpoint();
    // Restores a state written by to_checkpoint(); the model's architecture must match.
    void load_checkpoint_state(const Checkpoint& ck);

private:
    // Where a training step takes its batch: gathered through perm[cursor...] from a data set in
    // engine memory, or, when perm is null, already in x_ / y_ (the cursor is then not advanced).
    struct StepSource {
        const float* images = nullptr;
        const std::int32_t* labels = nullptr;
        const std::int32_t* perm = nullptr;
        const std::uint8_t* pixels = nullptr;  // instead of images: 8-bit data
    };
    // A recorded training step and what it was recorded with: a replay reuses all of it.
    struct StepGraph {
        std::int64_t batch = 0, global = 0;
        StepSource source;
        AdamConfig adam;
        std::uint64_t seed = 0;              // dropout's draws (the kernels take it as an argument)
        std::unique_ptr<EngineGraph> graph;  // null until the second step of this shape
    };

    void setup(std::int64_t batch);
    // Binds the model's layers to this trainer's parameter and gradient arenas.
    void bind_layers();
    // One training step on this rank's b samples (b <= batch_) of a global batch of `global`
    // samples, enqueued on the engine (b == global for a single process); its first sample is
    // sample `first` of the global batch (dropout's draws).
    void enqueue_step(const StepSource& src, std::int64_t b, std::int64_t global,
                      std::int64_t first);
    // The step of a global batch of `global` samples whose first is at the permutation's cursor:
    // this rank's share of it through enqueue_step, or the replay of its graph for (share, global,
    // src, the Adam settings, the seed) when use_graphs and the engine has graphs (the first step
    // of a shape runs unrecorded, the second is recorded).
    void run_step(const StepSource& src, std::int64_t global, bool use_graphs);
    // Rank 0's training state to every rank.
    void broadcast_state();
    // Loss and accuracy of n samples, this rank's share of them summed over the ranks.
    // A data set in engine memory: the host arrays themselves on the CPU, a copy on a GPU.
    struct Resident {
        const float* images = nullptr;
        const std::uint8_t* pixels = nullptr;  // instead of images: 8-bit data
        const std::int32_t* labels = nullptr;
        EngineBuffer<float> images_buf;
        EngineBuffer<std::uint8_t> pixels_buf;
        EngineBuffer<std::int32_t> labels_buf;
    };
    EvalResult evaluate_shared(const Resident& r, std::int64_t n, std::int64_t batch_size);
    void check_data(const DataView& d, const char* what) const;
    Resident make_resident(const DataView& data);
    // Loss and accuracy sums of samples [begin, begin + n) of a resident data set on this rank.
    Metrics evaluate_resident(const Resident& r, std::int64_t begin, std::int64_t n,
                              std::int64_t batch_size);
    // Refuses (DeviceError) a fit whose memory_need does not fit in the engine's memory.
    void check_memory(const DataView& train, const DataView* validation, int batch_size);
    bool params_finite();

    Sequential* model_;
    Communicator* comm_;
    std::unique_ptr<Engine> engine_;
    std::unique_ptr<EngineAllReduce> grad_sum_;  // with more than one rank
    std::unique_ptr<Adam> adam_;
    EngineBuffer<float> params_, grads_;
    EngineBuffer<StepCounters> counters_;
    EngineBuffer<Metrics> metrics_;
    // For batches up to batch_: the input, its labels, and the engine's plan of the model.
    std::int64_t batch_ = 0;
    EngineBuffer<float> x_;
    EngineBuffer<std::int32_t> y_;
    std::unique_ptr<Plan> plan_;
    int epochs_done_ = 0;
    std::uint64_t seed_ = 1;
    // At most one per batch size. Declared last: destroyed before the buffers and the engine.
    std::vector<StepGraph> graphs_;
};

// Writes `ck` atomically to `path` after checking every float array in it is finite.
void save_training_checkpoint(const std::string& path, const Checkpoint& ck);
// Rebuilds a model (architecture and weights) from a checkpoint written by Trainer::to_checkpoint.
Sequential model_from_checkpoint(const Checkpoint& ck);

}  // namespace minicnn
