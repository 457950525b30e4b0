// host/trainer_checkpoint.cpp — the Trainer's checkpoints (minicnn/trainer.h): its state as a
// Checkpoint (weights, Adam moments and step, epochs done, shuffle seed), restoring it, the atomic
// save, and the model a checkpoint describes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "float_str.h"
#include "minicnn/checkpoint.h"
#include "minicnn/error.h"
#include "minicnn/trainer.h"

namespace minicnn {

Checkpoint Trainer::to_checkpoint() {
    pull_params();
    Checkpoint ck;
    const AdamConfig& a = adam_->config();
    ck.set("format", "minicnn-train");
    ck.set("model_name", model_->name());
    ck.set("model_spec", model_->spec());
    ck.set("epochs_done", std::to_string(epochs_done_));
    ck.set("adam_step", std::to_string(adam_steps()));
    ck.set("shuffle_seed", std::to_string(seed_));
    ck.set("rng",
           "permutation of epoch e: minicnn::detail::EpochPermutation(n, splitmix64(shuffle_seed, "
           "e)), a cycle-walking 6-round Feistel network, the same on every engine");
    ck.set("adam_lr", float_str(a.lr));
    ck.set("adam_beta1", float_str(a.beta1));
    ck.set("adam_beta2", float_str(a.beta2));
    ck.set("adam_eps", float_str(a.eps));
    const Shape s{model_->param_count()};
    ck.add_tensor("params", Tensor::from<float>(s, model_->params()));
    ck.add_tensor("adam_m", Tensor::from<float>(s, adam_->m_host()));
    ck.add_tensor("adam_v", Tensor::from<float>(s, adam_->v_host()));
    return ck;
}

namespace {

std::vector<float> float_array(const Checkpoint& ck, const std::string& name, std::int64_t n) {
    const CheckpointArray& a = ck.array(name);
    MINICNN_REQUIRE(a.dtype == DType::f32 && shape_numel(a.shape) == n,
                    "checkpoint: array '" << name << "' should be float32 with " << n
                                          << " elements, found " << dtype_name(a.dtype) << " "
                                          << shape_str(a.shape));
    std::vector<float> v(static_cast<std::size_t>(n));
    std::memcpy(v.data(), a.bytes.data(), v.size() * sizeof(float));
    return v;
}

long long meta_int(const Checkpoint& ck, const std::string& key) {
    const std::string& v = ck.get(key);
    try {
        std::size_t used = 0;
        const long long x = std::stoll(v, &used);
        if (used == v.size()) return x;
    } catch (const std::exception&) {
    }
    throw ArgumentError("checkpoint: '" + key + "' should be an integer, found '" + v + "'");
}

float meta_float(const Checkpoint& ck, const std::string& key) {
    const std::string& v = ck.get(key);
    try {
        std::size_t used = 0;
        const float x = std::stof(v, &used);
        if (used == v.size() && std::isfinite(x)) return x;
    } catch (const std::exception&) {
    }
    throw ArgumentError("checkpoint: '" + key + "' should be a finite number, found '" + v + "'");
}

std::uint64_t meta_uint64(const Checkpoint& ck, const std::string& key) {
    const std::string& v = ck.get(key);
    try {
        std::size_t used = 0;
        const unsigned long long x = std::stoull(v, &used);
        if (used == v.size() && !v.empty() && v[0] != '-') return std::uint64_t(x);
    } catch (const std::exception&) {
    }
    throw ArgumentError("checkpoint: '" + key + "' should be an unsigned integer, found '" + v +
                        "'");
}

}  // namespace

void Trainer::load_checkpoint_state(const Checkpoint& ck) {
    MINICNN_REQUIRE(ck.has("format") && ck.get("format") == "minicnn-train",
                    "checkpoint: not a minicnn training checkpoint (format '"
                        << (ck.has("format") ? ck.get("format") : std::string()) << "')");
    MINICNN_REQUIRE(ck.get("model_spec") == model_->spec(),
                    "checkpoint: it holds a different model:\n"
                        << ck.get("model_spec") << "expected:\n"
                        << model_->spec());
    // Read and check everything first, so that a bad checkpoint leaves this trainer as it was.
    const std::int64_t p = model_->param_count();
    std::vector<float> params = float_array(ck, "params", p);
    std::vector<float> m = float_array(ck, "adam_m", p), v = float_array(ck, "adam_v", p);
    AdamConfig a;
    a.lr = meta_float(ck, "adam_lr");
    a.beta1 = meta_float(ck, "adam_beta1");
    a.beta2 = meta_float(ck, "adam_beta2");
    a.eps = meta_float(ck, "adam_eps");
    MINICNN_REQUIRE(
        a.lr > 0 && a.beta1 >= 0 && a.beta1 < 1 && a.beta2 >= 0 && a.beta2 < 1 && a.eps > 0,
        "checkpoint: Adam settings out of range (lr " << a.lr << ", beta1 " << a.beta1 << ", beta2 "
                                                      << a.beta2 << ", eps " << a.eps << ")");
    StepCounters c;
    c.step = meta_int(ck, "adam_step");
    c.cursor = 0;
    const long long epochs = meta_int(ck, "epochs_done");
    MINICNN_REQUIRE(epochs >= 0 && epochs <= std::numeric_limits<int>::max() && c.step >= 0,
                    "checkpoint: epoch or step count out of range (epochs_done "
                        << epochs << ", adam_step " << c.step << ")");
    const std::uint64_t seed = meta_uint64(ck, "shuffle_seed");

    model_->params() = std::move(params);
    push_params();
    adam_->set_moments(std::move(m), std::move(v));
    adam_->set_config(a);
    engine_->upload(counters_.data(), &c, sizeof c);
    epochs_done_ = int(epochs);
    seed_ = seed;
}

void save_training_checkpoint(const std::string& path, const Checkpoint& ck) {
    for (const CheckpointArray& a : ck.arrays) {
        if (a.dtype != DType::f32) continue;
        const float* v = reinterpret_cast<const float*>(a.bytes.data());
        for (std::size_t i = 0; i < a.bytes.size() / sizeof(float); ++i) {
            if (!std::isfinite(v[i])) {
                throw Error("refusing to write checkpoint " + path + ": array '" + a.name +
                            "' holds a non-finite value at index " + std::to_string(i));
            }
        }
    }
    save_checkpoint(path, ck);
}

Sequential model_from_checkpoint(const Checkpoint& ck) {
    MINICNN_REQUIRE(ck.has("format") && ck.get("format") == "minicnn-train",
                    "checkpoint: not a minicnn training checkpoint");
    Sequential m = Sequential::from_spec(ck.get("model_spec"), ck.get("model_name"));
    m.params() = float_array(ck, "params", m.param_count());
    return m;
}

}  // namespace minicnn
