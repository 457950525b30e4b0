// bench/bench_common.h — what the benchmark harness measures and how it reports it.
//
// The cases: LeNet-5's two convolutions and two max pools (docs/operations.md's table) at batch 32, 256 and
// 1024, and one larger layer (3x3 convolution, 64 -> 64 channels, 56x56, "same", batch 32, plus a
// 2x2 stride-2 max pool on the same activation). Every case is one *layer*; each layer has several
// *ops*:
//   conv layers: conv_fwd (bias, linear activation), conv_bwd_data, conv_bwd_filter (dW and db)
//   pool layers: pool_fwd (max with the training path's first-max mask), pool_bwd (mask routing)
// Inputs are uniform in [-1, 1) from a fixed seed per layer (ties in a max window have probability
// ~0, so every max-pool rule — first max, all ties, cuDNN's — routes gradients identically).
//
// Timing rules (STYLE.md): validate before timing, warm up, then time many repetitions and report
// the median, with GFLOP/s (convolutions: 2 * multiply-adds) or GB/s (pooling: the nominal traffic,
// one read of the op's input and one write of its output, the same count for minicnn and its peer).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "minicnn/geometry.h"

namespace minicnn::bench {

enum class LayerKind { conv, pool };

struct Layer {
    std::string name;  // "lenet_conv1", ...
    LayerKind kind = LayerKind::conv;
    ConvGeom conv;  // when kind == conv
    PoolGeom pool;  // when kind == pool
    std::uint32_t seed = 0;
    bool gpu_only = false;  // too slow for the CPU part (and PyTorch's): GPU against cuDNN only

    std::int64_t batch() const { return kind == LayerKind::conv ? conv.n : pool.n; }
};

// The benchmark's layers, validated through the library's own geometry rules.
inline std::vector<Layer> all_layers() {
    std::vector<Layer> layers;
    std::uint32_t seed = 1234;
    auto conv = [&](const char* name, std::int64_t n, std::int64_t h, std::int64_t c, int kk,
                    std::int64_t k, Padding pad) {
        Layer l;
        l.name = name;
        l.kind = LayerKind::conv;
        l.conv = conv_geometry({n, h, h, c}, {kk, kk, c, k}, pad, Stride{1, 1}, name);
        l.seed = seed++;
        layers.push_back(l);
    };
    auto pool = [&](const char* name, std::int64_t n, std::int64_t h, std::int64_t c) {
        Layer l;
        l.name = name;
        l.kind = LayerKind::pool;
        l.pool = pool_geometry({n, h, h, c}, Window{2, 2}, Stride{2, 2}, name);
        l.seed = seed++;
        layers.push_back(l);
    };
    for (std::int64_t n : {32, 256, 1024}) {
        conv("lenet_conv1", n, 28, 1, 5, 6, Padding::same());    // C1: 1@28x28 -> 6@28x28
        pool("lenet_pool1", n, 28, 6);                           // S2: 6@28x28 -> 6@14x14
        conv("lenet_conv2", n, 14, 6, 5, 16, Padding::valid());  // C3: 6@14x14 -> 16@10x10
        pool("lenet_pool2", n, 10, 16);                          // S4: 16@10x10 -> 16@5x5
    }
    conv("large_conv3x3", 32, 56, 64, 3, 64, Padding::same());  // 64@56x56 -> 64@56x56
    pool("large_pool", 32, 56, 64);                             // 64@56x56 -> 64@28x28
    // The many-channel convolution at batch 64 (issue 25): minicnn's direct kernels against cuDNN.
    conv("large_conv3x3", 64, 56, 64, 3, 64, Padding::same());
    layers.back().gpu_only = true;
    return layers;
}

inline std::vector<std::string> layer_ops(const Layer& l) {
    if (l.kind == LayerKind::conv) return {"conv_fwd", "conv_bwd_data", "conv_bwd_filter"};
    return {"pool_fwd", "pool_bwd"};
}

// Work of one op: floating-point operations (convolutions) or nominal bytes (pooling).
inline double op_flops(const Layer& l, const std::string& op) {
    if (l.kind != LayerKind::conv) return 0.0;
    (void)op;  // forward, backward-data and backward-filter are the same number of multiply-adds
    return 2.0 * l.conv.macs();
}
inline double op_bytes(const Layer& l, const std::string& op) {
    if (l.kind != LayerKind::pool) return 0.0;
    (void)op;  // forward reads inp, writes out; backward reads dout, writes dinp
    return 4.0 * double(l.pool.in_numel() + l.pool.out_numel());
}

inline std::string geom_str(const Layer& l) {
    std::ostringstream os;
    if (l.kind == LayerKind::conv) {
        const ConvGeom& g = l.conv;
        os << "in (" << g.n << "," << g.h << "," << g.w << "," << g.c << ") k" << g.kh << "x"
           << g.kw << " " << g.c << "->" << g.k << " pad " << g.ph << " out (" << g.oh << ","
           << g.ow << ")";
    } else {
        const PoolGeom& g = l.pool;
        os << "in (" << g.n << "," << g.h << "," << g.w << "," << g.c << ") max " << g.kh << "x"
           << g.kw << " s" << g.sh << " out (" << g.oh << "," << g.ow << ")";
    }
    return os.str();
}

// Uniform [-1, 1) from a fixed seed: the same bytes on every machine (mt19937 is specified exactly;
// the float is built from the raw 32-bit draw, not through std::uniform_real_distribution).
inline std::vector<float> random_floats(std::size_t count, std::uint32_t seed) {
    std::mt19937 gen(seed);
    std::vector<float> v(count);
    for (auto& x : v) x = float(double(gen()) / 2147483648.0 - 1.0);
    return v;
}

// The layer's input tensors: slot 0 inp, 1 weight, 2 bias, 3 dout. The CPU and GPU parts draw the
// same values, so their inputs (and PyTorch's, through --dump) are identical.
enum Slot { kInp = 0, kWeight = 1, kBias = 2, kDout = 3 };
inline std::vector<float> layer_tensor(const Layer& l, Slot slot, std::int64_t count) {
    return random_floats(std::size_t(count), l.seed * 8 + std::uint32_t(slot));
}

// Element-wise comparison |got - ref| <= atol + rtol * |ref|; atol scales with the reduction
// length.
struct Compare {
    bool ok = true;
    double max_abs_err = 0.0;
    std::int64_t worst = -1;  // index of the element furthest over its tolerance
    double got = 0.0, ref = 0.0;
    std::int64_t bad = 0;
};
inline Compare compare(const float* got, const float* ref, std::int64_t count,
                       std::int64_t reduction_len, double rtol = 1e-4) {
    Compare c;
    const double atol = 1e-6 * double(std::max<std::int64_t>(reduction_len, 1));
    double worst_excess = -1.0;
    for (std::int64_t i = 0; i < count; ++i) {
        const double err = std::fabs(double(got[i]) - double(ref[i]));
        const double tol = atol + rtol * std::fabs(double(ref[i]));
        c.max_abs_err = std::max(c.max_abs_err, err);
        if (!(err <= tol)) {  // also catches NaN
            ++c.bad;
            c.ok = false;
        }
        if (!(err - tol <= worst_excess)) {
            worst_excess = err - tol;
            c.worst = i;
            c.got = got[i];
            c.ref = ref[i];
        }
    }
    return c;
}
inline std::string compare_str(const Compare& c) {
    std::ostringstream os;
    os << (c.ok ? "ok" : "MISMATCH") << " max|err| " << c.max_abs_err;
    if (!c.ok)
        os << ", " << c.bad << " elements out of tolerance, worst at " << c.worst << ": got "
           << c.got << " ref " << c.ref;
    return os.str();
}

// Reduction length of each op (for the tolerance): conv_fwd kh*kw*c, bwd_data kh*kw*k (at most),
// bwd_filter n*oh*ow; pooling is exact.
inline std::int64_t reduction_len(const Layer& l, const std::string& op) {
    if (l.kind != LayerKind::conv) return 1;
    const ConvGeom& g = l.conv;
    if (op == "conv_fwd") return std::int64_t(g.kh) * g.kw * g.c;
    if (op == "conv_bwd_data") return std::int64_t(g.kh) * g.kw * g.k;
    return g.n * g.oh * g.ow;
}

struct Timing {
    double median_ms = 0.0, min_ms = 0.0, max_ms = 0.0;
    int reps = 0;
};
inline Timing summarize(std::vector<double> ms) {
    Timing t;
    if (ms.empty()) return t;
    std::sort(ms.begin(), ms.end());
    const std::size_t n = ms.size();
    t.median_ms = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
    t.min_ms = ms.front();
    t.max_ms = ms.back();
    t.reps = int(n);
    return t;
}

// CPU timing: `warmup` untimed calls, then one steady-clock measurement per call until at least
// `min_reps` calls and `min_seconds` of measured time (or `max_reps` calls).
inline Timing time_cpu(const std::function<void()>& fn, double min_seconds, int warmup = 2,
                       int min_reps = 5, int max_reps = 200) {
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<double> ms;
    double total = 0.0;
    while (int(ms.size()) < max_reps && (int(ms.size()) < min_reps || total < min_seconds)) {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        const auto t1 = std::chrono::steady_clock::now();
        const double s = std::chrono::duration<double>(t1 - t0).count();
        ms.push_back(1e3 * s);
        total += s;
    }
    return summarize(std::move(ms));
}

// A flat JSON object built field by field (the harness writes one per measured op).
class JsonObject {
public:
    JsonObject& str(const std::string& k, const std::string& v) {
        add(k, quote(v));
        return *this;
    }
    JsonObject& num(const std::string& k, double v) {
        std::ostringstream os;
        if (std::isfinite(v)) {
            os.precision(9);
            os << v;
        } else {
            os << "null";
        }
        add(k, os.str());
        return *this;
    }
    JsonObject& boolean(const std::string& k, bool v) {
        add(k, v ? "true" : "false");
        return *this;
    }
    JsonObject& raw(const std::string& k, const std::string& v) {
        add(k, v);
        return *this;
    }
    std::string dump() const { return "{" + body_ + "}"; }

    static std::string quote(const std::string& s) {
        std::string o = "\"";
        for (char ch : s) {
            if (ch == '"' || ch == '\\') {
                o += '\\';
                o += ch;
            } else if (static_cast<unsigned char>(ch) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", ch);
                o += buf;
            } else {
                o += ch;
            }
        }
        return o + "\"";
    }

private:
    void add(const std::string& k, const std::string& v) {
        if (!body_.empty()) body_ += ", ";
        body_ += quote(k) + ": " + v;
    }
    std::string body_;
};

// Options shared by the CPU and GPU parts of the harness.
struct Options {
    bool cpu = false;
    bool gpu = false;
    std::string json_path;  // results
    std::string dump_dir;   // CPU: write inputs and minicnn outputs for the PyTorch peer, then stop
    std::string filter;     // only layers whose "<name>_b<batch>" contains this
    double min_seconds = 0.5;
    int gpu_reps = 50;
    std::string command_line;
};

inline std::string layer_id(const Layer& l) {
    return l.name + "_b" + std::to_string(l.batch());
}

inline bool selected(const Options& o, const Layer& l) {
    return o.filter.empty() || layer_id(l).find(o.filter) != std::string::npos;
}

// One measured op, as a JSON object (the report joins these by layer, batch, op and backend).
inline JsonObject result_json(const Layer& l, const std::string& op, const std::string& backend,
                              const Timing& t) {
    JsonObject j;
    j.str("layer", l.name)
        .num("batch", double(l.batch()))
        .str("op", op)
        .str("backend", backend)
        .str("shape", geom_str(l))
        .num("median_ms", t.median_ms)
        .num("min_ms", t.min_ms)
        .num("max_ms", t.max_ms)
        .num("reps", t.reps);
    const double flops = op_flops(l, op), bytes = op_bytes(l, op);
    if (flops > 0) j.num("flops", flops).num("gflops", flops / (t.median_ms * 1e6));
    if (bytes > 0) j.num("bytes", bytes).num("gbps", bytes / (t.median_ms * 1e6));
    return j;
}

#if defined(MINICNN_BENCH_CUDNN)
// bench/bench_gpu.cpp: minicnn's CUDA launchers against cuDNN. Returns the JSON objects of the
// measured ops; `skip_reason` is set (and nothing measured) when no GPU is visible.
std::vector<std::string> run_gpu(const Options& o, std::string* skip_reason, std::string* device);
#endif

}  // namespace minicnn::bench
