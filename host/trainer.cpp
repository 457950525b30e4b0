// host/trainer.cpp — Trainer (minicnn/trainer.h): workspace set-up, the epoch loop, evaluation,
// prediction and the training state in a checkpoint.
//
// One training step (enqueue_step), all on the engine, no host<->device synchronisation, no
// allocation:
//   gather_batch (perm[cursor...]) -> the plan's training forward (every stage, minicnn/plan.h;
//   dropout draws from the run's seed and the step counter) ->
//   softmax_xent (dlogits, metrics; it also counts the step: step += 1, cursor += batch) -> the
//   plan's backward (parameter gradients into the gradient arena) -> Adam (one flat update, t read
//   from the step counter).
// fit() runs it through run_step, which on the GPU replays a CUDA graph of it per batch size.
// The host only reads the metrics at a progress tick and at the end of an epoch.
//
// With more than one rank (minicnn/distributed.h), a step is this rank's share of the global batch:
// gather_batch reads perm[cursor + share.begin ...] (the permutation pointer shifted by the share's
// begin), softmax_xent divides by the global batch, the gradient arena is summed over the ranks
// between backward and Adam, and advance moves the cursor by the whole global batch.
//
// What a run reports per epoch is here once for the minicnn program and the Python module: the
// metrics CSV row and the checkpoint that fit() writes after each epoch (FitOptions::metrics_path,
// checkpoint_path), and the progress and epoch lines both print (progress_line, epoch_line).
#include "minicnn/trainer.h"

#include <time.h>
#include <algorithm>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>

#include "float_str.h"
#include "minicnn/error.h"

namespace minicnn {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU time used by the process so far, all threads (what a busy machine does not distort).
double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

constexpr int kEvalBatch = 256;

// "4.2s", "38s", "1m05s", "2h03m".
std::string format_duration(double s) {
    std::ostringstream os;
    if (s >= 3600) {
        os << int(s / 3600) << "h" << std::setw(2) << std::setfill('0')
           << int(std::fmod(s, 3600) / 60) << "m";
    } else if (s >= 60) {
        os << int(s / 60) << "m" << std::setw(2) << std::setfill('0') << int(std::fmod(s, 60))
           << "s";
    } else {
        os << std::fixed << std::setprecision(s < 10 ? 1 : 0) << s << "s";
    }
    return os.str();
}

// FitOptions::metrics_path (minicnn/trainer.h says what it keeps and when it starts over).
class MetricsCsv {
public:
    MetricsCsv(const std::string& path, int epochs_done) : path_(path) {
        if (path.empty()) return;
        std::string kept;
        bool append = false;
        if (epochs_done > 0) {
            std::ifstream old(path);
            std::string line;
            while (old && std::getline(old, line)) {
                const bool header = !append;
                append = true;
                if (header || std::atoll(line.c_str()) <= epochs_done) kept += line + "\n";
            }
        }
        if (append) {  // rewritten beside it and renamed: a kill now cannot lose the rows
            const std::string tmp = path + ".tmp";
            std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
            if (!(f << kept).flush()) throw Error("cannot write metrics file " + tmp);
            f.close();
            if (std::rename(tmp.c_str(), path.c_str()) != 0) {
                std::remove(tmp.c_str());
                throw Error("cannot replace metrics file " + path);
            }
        }
        out_.open(path, append ? std::ios::app : std::ios::trunc);
        if (!out_) throw Error("cannot open metrics file " + path + " for writing");
        if (!append)
            out_ << "epoch,loss,accuracy,val_loss,val_accuracy,seconds,images_per_second\n";
        flush();
    }

    void write(const EpochLog& e) {
        if (path_.empty()) return;
        out_ << std::setprecision(10) << e.epoch << "," << e.loss << "," << e.accuracy << ",";
        if (e.val_loss >= 0)
            out_ << e.val_loss << "," << e.val_accuracy;
        else
            out_ << ",";
        out_ << "," << e.seconds << "," << e.images_per_second << "\n";
        flush();
    }

private:
    void flush() {
        if (!out_.flush()) throw Error("failed writing metrics file " + path_);
    }
    std::string path_;
    std::ofstream out_;
};

}  // namespace

std::string progress_line(const Progress& p, bool bar) {
    std::ostringstream os;
    os << std::fixed << "Epoch " << p.epoch << "/" << p.epochs << " ";
    if (bar) {
        const int width = 30;
        const int done = p.steps > 0 ? int(width * double(p.step) / double(p.steps)) : 0;
        os << std::setw(6) << p.step << "/" << p.steps << " [" << std::string(done, '=')
           << (done < width ? ">" : "") << std::string(std::max(0, width - done - 1), '.') << "]";
    } else {
        os << "step " << p.step << "/" << p.steps;
    }
    os << " - " << std::setprecision(0) << p.images_per_second << " img/s - ETA "
       << format_duration(p.eta_s) << " - loss: " << std::setprecision(4) << p.loss
       << " - accuracy: " << p.accuracy;
    return os.str();
}

std::string epoch_line(const EpochLog& e, int epochs) {
    std::ostringstream os;
    os << std::fixed << "Epoch " << e.epoch << "/" << epochs << " - " << e.steps << " steps - "
       << format_duration(e.seconds) << " - " << std::setprecision(0) << e.images_per_second
       << " img/s - loss: " << std::setprecision(4) << e.loss << " - accuracy: " << e.accuracy;
    if (e.val_loss >= 0)
        os << " - val_loss: " << e.val_loss << " - val_accuracy: " << e.val_accuracy;
    return os.str();
}

DataView view_of(const Dataset& d) {
    DataView v;
    v.pixels = d.pixels.data();
    v.labels = d.labels.data();
    v.n = d.size();
    return v;
}

std::uint64_t seed_for_epoch(std::uint64_t seed, int epoch) {
    std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (std::uint64_t(epoch) + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

Trainer::Trainer(Sequential& model, Device device, Communicator* comm)
    : model_(&model), comm_(comm ? comm : &single_process()), engine_(make_engine(device)) {
    MINICNN_REQUIRE(model.size() > 0, "Trainer: the model has no layers");
    if (comm_->size() > 1) grad_sum_ = engine_->make_allreduce(*comm_);
    const std::int64_t p = model.param_count();
    params_ = EngineBuffer<float>(*engine_, p);
    grads_ = EngineBuffer<float>(*engine_, p);
    adam_ = std::make_unique<Adam>(*engine_, p);
    counters_ = EngineBuffer<StepCounters>(*engine_, 1);
    metrics_ = EngineBuffer<Metrics>(*engine_, 1);
    push_params();
}

Trainer::~Trainer() = default;

void Trainer::push_params() {
    engine_->upload(params_.data(), model_->params().data(), params_.bytes());
    bind_layers();
}

void Trainer::pull_params() {
    engine_->download(model_->params().data(), params_.data(), params_.bytes());
}

std::vector<float> Trainer::gradients() {
    std::vector<float> g(static_cast<std::size_t>(grads_.size()));
    engine_->download(g.data(), grads_.data(), grads_.bytes());
    return g;
}

std::int64_t Trainer::adam_steps() {
    StepCounters c;
    engine_->download(&c, counters_.data(), sizeof c);
    return c.step;
}

void Trainer::bind_layers() {
    for (std::size_t i = 0; i < model_->size(); ++i) {
        model_->layer(i).bind(params_.data() + model_->param_offset(i),
                              grads_.data() + model_->param_offset(i));
    }
}

void Trainer::setup(std::int64_t batch) {
    bind_layers();  // another trainer may have bound the model's layers since
    if (batch <= batch_) return;
    // The graphs recorded the old plan's buffers and engine scratch. (The layers' parameter views
    // need no such care: they are re-bound above to this trainer's arenas, which never move.)
    graphs_.clear();
    plan_.reset();  // its buffers go before the new plan's are allocated
    Engine& e = *engine_;
    x_ = EngineBuffer<float>(e, batch * shape_numel(model_->input_shape()));
    y_ = EngineBuffer<std::int32_t>(e, batch);
    plan_ = e.plan(*model_, batch);
    e.reserve_loss(batch);
    batch_ = batch;
}

void Trainer::enqueue_step(const StepSource& src, std::int64_t b, std::int64_t global,
                           std::int64_t first) {
    Engine& e = *engine_;
    const std::int64_t sample = shape_numel(model_->input_shape());
    const std::int64_t classes = shape_numel(model_->output_shape());
    if (b > 0) {
        if (src.perm && src.pixels) {
            e.gather_batch(x_.data(), y_.data(), src.pixels, src.labels, src.perm, counters_.data(),
                           b, sample);
        } else if (src.perm) {
            e.gather_batch(x_.data(), y_.data(), src.images, src.labels, src.perm, counters_.data(),
                           b, sample);
        }
        const TrainingStep t{seed_, counters_.data(), first};
        const float* probs = plan_->forward(x_.data(), b, &t);
        // The loss also counts the step (step + 1, cursor past the global batch): no advance launch.
        e.softmax_xent(plan_->dlogits(), metrics_.data(), probs, y_.data(), b, classes, global,
                       counters_.data(), src.perm ? global : 0);
        plan_->backward(b);
    } else {  // an empty share (a last batch smaller than the ranks): no gradient from this rank
        e.fill_zero(grads_.data(), grads_.bytes());
        e.advance(counters_.data(), src.perm ? global : 0, true);
    }
    if (grad_sum_) grad_sum_->sum(grads_.data(), grads_.size());
    adam_->step(params_.data(), grads_.data(), counters_.data());
}

void Trainer::run_step(const StepSource& global_src, std::int64_t global, bool use_graphs) {
    const Share mine = share(global, comm_->rank(), comm_->size());
    const std::int64_t b = mine.count;
    StepSource src = global_src;
    if (src.perm) src.perm += mine.begin;
    // A graph cannot hold a host all-reduce, nor NCCL's, whose completion the host waits for with a
    // deadline (cuda/nccl/allreduce_nccl.cpp): more than one rank runs unrecorded.
    if (!use_graphs || grad_sum_) return enqueue_step(src, b, global, mine.begin);
    const AdamConfig& a = adam_->config();
    auto it = std::find_if(graphs_.begin(), graphs_.end(),
                           [&](const StepGraph& g) { return g.batch == b && g.global == global; });
    if (it != graphs_.end()) {
        const StepSource& r = it->source;
        const bool same_source = r.images == src.images && r.pixels == src.pixels &&
                                 r.labels == src.labels && r.perm == src.perm;
        const bool same_adam = it->adam.lr == a.lr && it->adam.beta1 == a.beta1 &&
                               it->adam.beta2 == a.beta2 && it->adam.eps == a.eps;
        if (!same_source || !same_adam || it->seed != seed_) {  // recorded for another fit
            graphs_.erase(it);
            it = graphs_.end();
        }
    }
    if (it == graphs_.end()) {
        // The first step of a shape runs unrecorded: a warm-up, so that one-time initialisation
        // (module loading, cuBLAS's first call) never happens inside a capture.
        graphs_.push_back(StepGraph{b, global, src, a, seed_, nullptr});
        return enqueue_step(src, b, global, mine.begin);
    }
    if (!it->graph) {
        it->graph = engine_->capture([&] { enqueue_step(src, b, global, mine.begin); });
        if (!it->graph) return enqueue_step(src, b, global, mine.begin);  // no graphs
    }
    it->graph->launch();
}

void Trainer::check_data(const DataView& d, const char* what) const {
    MINICNN_REQUIRE(d.n > 0, what << ": expected at least one sample, got " << d.n);
    MINICNN_REQUIRE((d.images != nullptr) != (d.pixels != nullptr) && d.labels != nullptr,
                    what << ": expected labels and either float32 images or 8-bit pixels, got "
                         << (d.labels ? "labels" : "no labels") << ", "
                         << (d.images ? "images" : "no images") << " and "
                         << (d.pixels ? "pixels" : "no pixels"));
    const std::int64_t classes = shape_numel(model_->output_shape());
    for (std::int64_t i = 0; i < d.n; ++i) {
        MINICNN_REQUIRE(d.labels[i] >= 0 && d.labels[i] < classes,
                        what << ": label " << d.labels[i] << " of sample " << i
                             << " is outside [0, " << classes << ")");
    }
}

bool Trainer::params_finite() {
    pull_params();
    for (float v : model_->params())
        if (!std::isfinite(v)) return false;
    return true;
}

History Trainer::fit(const DataView& train, const DataView* validation, const FitOptions& opt) {
    MINICNN_REQUIRE(opt.epochs >= 0, "fit: epochs must be >= 0, got " << opt.epochs);
    MINICNN_REQUIRE(opt.batch_size > 0, "fit: batch_size must be > 0, got " << opt.batch_size);
    validate_adam_config(opt.adam);
    MINICNN_REQUIRE(model_->layer(model_->size() - 1).activation() == Activation::softmax,
                    "fit: the last layer must end in a softmax (categorical cross-entropy), got "
                        << activation_name(model_->layer(model_->size() - 1).activation()));
    const int ranks = comm_->size();
    const bool root = comm_->rank() == 0;
    MINICNN_REQUIRE(opt.batch_size % ranks == 0, "fit: the global batch of "
                                                     << opt.batch_size << " does not divide among "
                                                     << ranks << " ranks");
    check_data(train, "fit: training data");
    if (validation) check_data(*validation, "fit: validation data");
    adam_->set_config(opt.adam);
    seed_ = opt.seed;
    broadcast_state();

    // Before anything is allocated for the run, and before the metrics file is opened.
    check_memory(train, validation, opt.batch_size);
    Engine& e = *engine_;
    const std::int64_t batch = std::min<std::int64_t>(opt.batch_size, train.n);
    setup(std::max<std::int64_t>(batch, kEvalBatch));

    // The training and validation sets go to the engine once.
    const Resident tr = make_resident(train);
    const Resident va = validation ? make_resident(*validation) : Resident{};
    EngineBuffer<std::int32_t> perm(e, train.n);
    const StepSource source{tr.images, tr.labels, perm.data(), tr.pixels};
    MetricsCsv metrics(root ? opt.metrics_path : std::string(), epochs_done_);

    History history;
    const std::int64_t steps = (train.n + batch - 1) / batch;
    for (int epoch = epochs_done_; epoch < opt.epochs; ++epoch) {
        const auto t0 = Clock::now();
        const double cpu0 = process_cpu_seconds();
        e.permutation(perm.data(), train.n, seed_for_epoch(seed_, epoch), opt.shuffle);
        e.fill_zero(metrics_.data(), sizeof(Metrics));
        e.fill_zero(&counters_.data()->cursor, sizeof(std::int64_t));
        auto last_tick = t0;
        for (std::int64_t s = 0; s < steps; ++s) {
            const std::int64_t b = std::min(batch, train.n - s * batch);
            run_step(source, b, opt.cuda_graphs);
            if (opt.on_progress && s + 1 < steps &&
                std::chrono::duration<double>(Clock::now() - last_tick).count() >=
                    opt.progress_interval_s) {
                last_tick = Clock::now();
                Metrics m;
                e.download(&m, metrics_.data(), sizeof m);  // the tick's one synchronisation
                if (!std::isfinite(m.loss_sum)) {
                    throw Error("training diverged: the loss became " + float_str(m.loss_sum) +
                                " in epoch " + std::to_string(epoch + 1) + " at step " +
                                std::to_string(s + 1) + "; no checkpoint was written for it");
                }
                Progress p;
                p.epoch = epoch + 1;
                p.epochs = opt.epochs;
                p.step = s + 1;
                p.steps = steps;
                p.images = std::int64_t(m.count) * ranks;  // rank 0's share, times the ranks
                p.loss = m.loss_sum / m.count;
                p.accuracy = m.correct / m.count;
                p.elapsed_s = seconds_since(t0);
                p.images_per_second = double(p.images) / std::max(p.elapsed_s, 1e-9);
                p.eta_s = double(train.n - p.images) / std::max(p.images_per_second, 1e-9);
                opt.on_progress(p);
            }
        }
        Metrics local;
        e.download(&local, metrics_.data(), sizeof local);
        double sums[3] = {local.loss_sum, local.correct, local.count};
        comm_->allreduce_sum(sums, 3);
        const Metrics m{sums[0], sums[1], sums[2]};
        EpochLog log;
        log.epoch = epoch + 1;
        log.steps = steps;
        log.seconds = seconds_since(t0);
        log.cpu_seconds = process_cpu_seconds() - cpu0;
        log.loss = m.loss_sum / m.count;
        log.accuracy = m.correct / m.count;
        log.images_per_second = double(train.n) / std::max(log.seconds, 1e-9);
        if (!std::isfinite(log.loss) || !params_finite()) {
            throw Error("training diverged: " +
                        (std::isfinite(log.loss) ? std::string("the weights contain NaN or Inf")
                                                 : "the loss became " + float_str(log.loss)) +
                        " in epoch " + std::to_string(epoch + 1) +
                        "; no checkpoint was written for it (try a smaller learning rate)");
        }
        if (ranks > 1) {  // params_finite() pulled the weights
            const std::vector<float>& w = model_->params();
            check_same_checksum(
                comm_->allgather(weights_checksum(w.data(), std::int64_t(w.size()))),
                "after epoch " + std::to_string(epoch + 1));
        }
        epochs_done_ = epoch + 1;
        if (validation) {
            const EvalResult v = evaluate_shared(va, validation->n, batch_);
            log.val_loss = v.loss;
            log.val_accuracy = v.accuracy;
        }
        history.epochs.push_back(log);
        // The row first: a kill between the two leaves a row that a resume drops (MetricsCsv).
        metrics.write(log);
        if (root && !opt.checkpoint_path.empty())
            save_training_checkpoint(opt.checkpoint_path, to_checkpoint());
        if (opt.on_epoch_end) opt.on_epoch_end(log);
    }
    return history;
}

EvalResult Trainer::evaluate(const DataView& data, int batch_size) {
    MINICNN_REQUIRE(batch_size > 0, "evaluate: batch_size must be > 0, got " << batch_size);
    MINICNN_REQUIRE(model_->layer(model_->size() - 1).activation() == Activation::softmax,
                    "evaluate: the last layer must end in a softmax");
    check_data(data, "evaluate");
    const auto t0 = Clock::now();
    const Resident r = make_resident(data);
    EvalResult res = evaluate_shared(r, data.n, batch_size);
    res.seconds = seconds_since(t0);
    return res;
}

EvalResult Trainer::evaluate_shared(const Resident& r, std::int64_t n, std::int64_t batch_size) {
    const Share mine = share(n, comm_->rank(), comm_->size());
    double sums[3] = {0, 0, 0};
    if (mine.count > 0) {
        const Metrics m = evaluate_resident(r, mine.begin, mine.count, batch_size);
        sums[0] = m.loss_sum;
        sums[1] = m.correct;
        sums[2] = m.count;
    }
    comm_->allreduce_sum(sums, 3);
    EvalResult res;
    res.count = n;
    res.loss = sums[0] / sums[2];
    res.accuracy = sums[1] / sums[2];
    return res;
}

void Trainer::broadcast_state() {
    if (comm_->size() == 1) return;
    pull_params();
    std::vector<float>& w = model_->params();
    comm_->broadcast(w.data(), w.size() * sizeof(float), 0);
    push_params();
    std::vector<float> m = adam_->m_host(), v = adam_->v_host();
    comm_->broadcast(m.data(), m.size() * sizeof(float), 0);
    comm_->broadcast(v.data(), v.size() * sizeof(float), 0);
    adam_->set_moments(std::move(m), std::move(v));
    std::int64_t state[3] = {adam_steps(), epochs_done_, std::int64_t(seed_)};
    comm_->broadcast(state, sizeof state, 0);
    const StepCounters c{state[0], 0};
    engine_->upload(counters_.data(), &c, sizeof c);
    epochs_done_ = int(state[1]);
    seed_ = std::uint64_t(state[2]);
}

Trainer::Resident Trainer::make_resident(const DataView& data) {
    Resident r;
    r.images = data.images;
    r.pixels = data.pixels;
    r.labels = data.labels;
    if (engine_->backend() != Backend::cpu) {  // on the CPU the host arrays are used as they are
        const std::int64_t sample = shape_numel(model_->input_shape());
        if (data.pixels) {  // 8-bit on the device too
            r.pixels_buf = EngineBuffer<std::uint8_t>(*engine_, data.n * sample);
            engine_->upload(r.pixels_buf.data(), data.pixels, r.pixels_buf.bytes());
            r.pixels = r.pixels_buf.data();
        } else {
            r.images_buf = EngineBuffer<float>(*engine_, data.n * sample);
            engine_->upload(r.images_buf.data(), data.images, r.images_buf.bytes());
            r.images = r.images_buf.data();
        }
        r.labels_buf = EngineBuffer<std::int32_t>(*engine_, data.n);
        engine_->upload(r.labels_buf.data(), data.labels, r.labels_buf.bytes());
        r.labels = r.labels_buf.data();
    }
    return r;
}

Metrics Trainer::evaluate_resident(const Resident& r, std::int64_t begin, std::int64_t n,
                                   std::int64_t batch_size) {
    Engine& e = *engine_;
    const std::int64_t batch = std::min<std::int64_t>(batch_size, n);
    setup(batch);
    const std::int64_t sample = shape_numel(model_->input_shape());
    const std::int64_t classes = shape_numel(model_->output_shape());
    const std::int32_t* labels = r.labels + begin;
    e.fill_zero(metrics_.data(), sizeof(Metrics));
    if (r.pixels) {
        // 8-bit data go through the batch gather (which scales them), in order: an identity
        // permutation and a cursor of their own.
        EngineBuffer<std::int32_t> order(e, n);
        EngineBuffer<StepCounters> cursor(e, 1);
        e.permutation(order.data(), n, 0, false);
        for (std::int64_t s = 0; s < n; s += batch) {
            const std::int64_t b = std::min(batch, n - s);
            e.gather_batch(x_.data(), y_.data(), r.pixels + begin * sample, labels, order.data(),
                           cursor.data(), b, sample);
            const float* probs = plan_->forward(x_.data(), b);
            e.softmax_xent(nullptr, metrics_.data(), probs, y_.data(), b, classes, b, nullptr, 0);
            e.advance(cursor.data(), b, false);
        }
    } else {
        const float* images = r.images + begin * sample;
        for (std::int64_t s = 0; s < n; s += batch) {
            const std::int64_t b = std::min(batch, n - s);
            const float* probs = plan_->forward(images + s * sample, b);
            e.softmax_xent(nullptr, metrics_.data(), probs, labels + s, b, classes, b, nullptr, 0);
        }
    }
    Metrics m;
    e.download(&m, metrics_.data(), sizeof m);
    return m;
}

MemoryNeed Trainer::memory_need(const DataView& train, const DataView* validation, int batch_size) {
    MINICNN_REQUIRE(batch_size > 0, "memory_need: batch_size must be > 0, got " << batch_size);
    Engine& e = *engine_;
    const std::int64_t sample = shape_numel(model_->input_shape());
    const std::size_t f = sizeof(float), i = sizeof(std::int32_t);
    MemoryNeed need;
    need.state =
        4 * std::size_t(model_->param_count()) * f + sizeof(StepCounters) + sizeof(Metrics);
    // fit() plans for max(batch, kEvalBatch) samples, and keeps a larger plan it already has.
    const std::int64_t batch =
        std::max({std::min<std::int64_t>(batch_size, train.n), std::int64_t(kEvalBatch), batch_});
    std::size_t per_sample = 0;  // every plan buffer holds max_batch samples
    {
        bind_layers();
        const std::size_t before = e.buffer_bytes();
        const std::unique_ptr<Plan> one = e.plan(*model_, 1);
        per_sample = e.buffer_bytes() - before;
    }
    need.plan = std::size_t(batch) * (per_sample + std::size_t(sample) * f + i);
    auto resident = [&](const DataView& d) -> std::size_t {
        if (e.backend() == Backend::cpu) return 0;  // the host arrays are used as they are
        return std::size_t(d.n) * (std::size_t(sample) * (d.pixels ? 1 : f) + i);
    };
    need.data = resident(train) + std::size_t(train.n) * i;  // + the epoch permutation
    if (validation) {
        need.data += resident(*validation);
        if (validation->pixels) need.data += std::size_t(validation->n) * i + sizeof(StepCounters);
    }
    return need;
}

void Trainer::check_memory(const DataView& train, const DataView* validation, int batch_size) {
    Engine& e = *engine_;
    const MemoryNeed need = memory_need(train, validation, batch_size);
    const std::size_t held = e.buffer_bytes();  // this trainer's: the engine is its own
    const std::size_t free_b = e.free_memory();
    const std::size_t available =
        free_b > std::numeric_limits<std::size_t>::max() - held ? free_b : free_b + held;
    if (need.total() <= available) return;
    const bool gpu = e.backend() != Backend::cpu;
    auto mib = [](std::size_t b) {
        std::ostringstream os;
        os << std::fixed << std::setprecision(1) << double(b) / (1024.0 * 1024.0) << " MiB";
        return os.str();
    };
    std::ostringstream os;
    os << "fit: does not fit in " << (gpu ? "GPU" : "host") << " memory: training needs "
       << need.total() << " bytes (" << mib(need.total()) << ": " << need.state
       << " for parameters, gradients and Adam, " << need.plan << " for the plan and batch of "
       << std::max({std::min<std::int64_t>(batch_size, train.n), std::int64_t(kEvalBatch), batch_})
       << " samples, " << need.data << " for the data), " << available << " bytes ("
       << mib(available) << ") are available ("
       << (gpu ? "cudaMemGetInfo's free memory" : "MemAvailable within this process's limits")
       << ", plus the " << held << " bytes this trainer holds); nothing was trained or written "
       << "(try a smaller batch size or model)";
    throw DeviceError(os.str());
}

Tensor Trainer::predict(const float* images, std::int64_t n, int batch_size) {
    MINICNN_REQUIRE(n > 0 && images != nullptr, "predict: expected at least one image, got " << n);
    MINICNN_REQUIRE(batch_size > 0, "predict: batch_size must be > 0, got " << batch_size);
    Engine& e = *engine_;
    const std::int64_t batch = std::min<std::int64_t>(batch_size, n);
    setup(batch);
    const std::int64_t sample = shape_numel(model_->input_shape());
    const std::int64_t outn = shape_numel(model_->output_shape());
    Shape out_shape{n};
    for (std::int64_t d : model_->output_shape()) out_shape.push_back(d);
    Tensor out(out_shape);
    float* dst = out.data<float>();
    for (std::int64_t s = 0; s < n; s += batch) {
        const std::int64_t b = std::min(batch, n - s);
        const float* x = images + s * sample;
        if (e.backend() != Backend::cpu) {
            e.upload(x_.data(), x, std::size_t(b * sample) * sizeof(float));
            x = x_.data();
        }
        const float* probs = plan_->forward(x, b);
        e.download(dst + s * outn, probs, std::size_t(b * outn) * sizeof(float));
    }
    return out;
}

double Trainer::train_step(const float* x, const std::int32_t* y, std::int64_t n,
                           const AdamConfig& cfg) {
    MINICNN_REQUIRE(n > 0 && x != nullptr && y != nullptr,
                    "train_step: expected a batch, got " << n);
    MINICNN_REQUIRE(comm_->size() == 1,
                    "train_step: one process only (with " << comm_->size() << " ranks, use fit())");
    adam_->set_config(cfg);
    DataView d{x, y, n};
    check_data(d, "train_step");
    setup(n);
    Engine& e = *engine_;
    const std::int64_t sample = shape_numel(model_->input_shape());
    e.upload(x_.data(), x, std::size_t(n * sample) * sizeof(float));
    e.upload(y_.data(), y, std::size_t(n) * sizeof(std::int32_t));
    e.fill_zero(metrics_.data(), sizeof(Metrics));
    enqueue_step(StepSource{}, n, n, 0);  // the batch is in x_ / y_ already
    Metrics m;
    e.download(&m, metrics_.data(), sizeof m);
    return m.loss_sum / m.count;
}

}  // namespace minicnn
