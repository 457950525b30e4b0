// bench/bench_ops.cpp — the op benchmark harness: minicnn's CPU backend (steady clock) and, in CUDA
// builds with cuDNN, minicnn's CUDA launchers against cuDNN (bench/bench_gpu.cpp, CUDA events).
//
// It calls the library's own entry points (minicnn/cpu_backend.h, minicnn/cuda_backend.h), never a
// copy. The CPU peer, PyTorch, runs in bench/torch_ops.py: `--dump DIR` writes every layer's inputs
// and minicnn's outputs as raw little-endian files plus DIR/manifest.json, which the script loads
// to validate PyTorch against minicnn on the same inputs before it times PyTorch.
//
//   minicnn_bench --cpu --dump DIR       write inputs + minicnn CPU outputs, no timing
//   minicnn_bench --cpu --json FILE      time minicnn's CPU backend
//   minicnn_bench --gpu --json FILE      validate then time minicnn CUDA vs cuDNN (CUDA builds)
// Options: --filter SUBSTR (layer ids such as lenet_conv1_b256), --min-time SECONDS (CPU, per op),
// --gpu-reps N (GPU, timed repetitions per op).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>


#include "bench_common.h"
#include "minicnn/cpu_backend.h"
#include "minicnn/error.h"
#include "minicnn/ops.h"

namespace minicnn::bench {
namespace {

std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("model name", 0) == 0) {
            const auto p = line.find(':');
            if (p != std::string::npos) return line.substr(p + 2);
        }
    }
    return "unknown CPU";
}

template <class T>
void write_raw(const std::string& path, const std::vector<T>& v) {
    std::ofstream f(path, std::ios::binary);
    MINICNN_REQUIRE(f, "minicnn_bench: cannot open " << path << " for writing");
    f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(T)));
    MINICNN_REQUIRE(f, "minicnn_bench: short write to " << path);
}

// The tensors of one conv layer: inputs from the layer's seed, outputs from minicnn's CPU backend.
struct ConvData {
    std::vector<float> inp, weight, bias, dout;    // inputs
    std::vector<float> out, dinp, dweight, dbias;  // minicnn's outputs
    explicit ConvData(const Layer& l) {
        const ConvGeom& g = l.conv;
        inp = layer_tensor(l, kInp, g.in_numel());
        weight = layer_tensor(l, kWeight, g.weight_numel());
        bias = layer_tensor(l, kBias, g.k);
        dout = layer_tensor(l, kDout, g.out_numel());
        out.resize(std::size_t(g.out_numel()));
        dinp.resize(std::size_t(g.in_numel()));
        dweight.resize(std::size_t(g.weight_numel()));
        dbias.resize(std::size_t(g.k));
    }
};

struct PoolData {
    std::vector<float> inp, dout;
    std::vector<float> out, dinp;
    std::vector<std::int32_t> mask;
    explicit PoolData(const Layer& l) {
        const PoolGeom& g = l.pool;
        inp = layer_tensor(l, kInp, g.in_numel());
        dout = layer_tensor(l, kDout, g.out_numel());
        out.resize(std::size_t(g.out_numel()));
        mask.resize(std::size_t(g.out_numel()));
        dinp.resize(std::size_t(g.in_numel()));
    }
};

// The minicnn CPU call behind each op name.
std::function<void()> conv_op(const Layer& l, ConvData& d, const std::string& op) {
    const ConvGeom g = l.conv;
    if (op == "conv_fwd")
        return [g, &d] {
            cpu::conv2d_forward<float>(d.out.data(), d.inp.data(), d.weight.data(), d.bias.data(),
                                       g, Activation::linear);
        };
    if (op == "conv_bwd_data")
        return [g, &d] {
            cpu::conv2d_backward_data<float>(d.dinp.data(), d.dout.data(), d.weight.data(), g);
        };
    return [g, &d] {
        cpu::conv2d_backward_filter<float>(d.dweight.data(), d.dbias.data(), d.dout.data(),
                                           d.inp.data(), g);
    };
}
std::function<void()> pool_op(const Layer& l, PoolData& d, const std::string& op) {
    const PoolGeom g = l.pool;
    if (op == "pool_fwd")
        return [g, &d] {
            cpu::maxpool2d_forward<float>(d.out.data(), d.mask.data(), d.inp.data(), g);
        };
    return [g, &d] {
        cpu::maxpool2d_backward_mask<float>(d.dinp.data(), d.dout.data(), d.mask.data(), g);
    };
}

// The functional C++ API (minicnn/ops.h) on the same data, as a C++ user calls it: argument checks,
// result Tensors allocated per call. Ops "api_conv_fwd" (linear activation), "api_conv_bwd" (dA_prev,
// dW and db in one call), "api_pool_fwd" (max, no mask), "api_pool_bwd" (max, the exercise's
// all-ties rule; the inputs have no ties, so it routes like the mask).
const std::vector<std::string>& api_ops(const Layer& l) {
    static const std::vector<std::string> conv = {"api_conv_fwd", "api_conv_bwd"};
    static const std::vector<std::string> pool = {"api_pool_fwd", "api_pool_bwd"};
    return l.kind == LayerKind::conv ? conv : pool;
}
std::function<void()> api_conv_op(const Layer& l, ConvData& d, const std::string& op) {
    const ConvGeom g = l.conv;
    const TensorView a(d.inp.data(), {g.n, g.h, g.w, g.c}, DType::f32);
    const TensorView w(d.weight.data(), {g.kh, g.kw, g.c, g.k}, DType::f32);
    const TensorView b(d.bias.data(), {1, 1, 1, g.k}, DType::f32);
    const TensorView dz(d.dout.data(), {g.n, g.oh, g.ow, g.k}, DType::f32);
    const Padding pad = Padding::explicit_pad(g.ph, g.pw);
    const Stride st{g.sh, g.sw};
    if (op == "api_conv_fwd")
        return [=] {
            Tensor z = conv_forward(a, w, b, Activation::linear, pad, st, Device::cpu());
        };
    return [=] { ConvGrads r = conv_backward(dz, a, w, b, pad, st, Device::cpu()); };
}
std::function<void()> api_pool_op(const Layer& l, PoolData& d, const std::string& op) {
    const PoolGeom g = l.pool;
    const TensorView a(d.inp.data(), {g.n, g.h, g.w, g.c}, DType::f32);
    const TensorView da(d.dout.data(), {g.n, g.oh, g.ow, g.c}, DType::f32);
    const Window win{g.kh, g.kw};
    const Stride st{g.sh, g.sw};
    if (op == "api_pool_fwd")
        return [=] { Tensor o = pool_forward(a, win, st, PoolMode::max, Device::cpu()); };
    return [=] {
        Tensor o = pool_backward(da, a, win, st, PoolMode::max, MaxTie::all_ties, Device::cpu());
    };
}

std::string conv_manifest(const Layer& l) {
    const ConvGeom& g = l.conv;
    JsonObject j;
    j.str("id", layer_id(l)).str("layer", l.name).str("kind", "conv");
    j.num("n", double(g.n)).num("h", double(g.h)).num("w", double(g.w)).num("c", double(g.c));
    j.num("k", double(g.k)).num("kh", g.kh).num("kw", g.kw).num("sh", g.sh).num("sw", g.sw);
    j.num("ph", g.ph).num("pw", g.pw).num("oh", double(g.oh)).num("ow", double(g.ow));
    j.num("flops", op_flops(l, "conv_fwd"));
    return j.dump();
}
std::string pool_manifest(const Layer& l) {
    const PoolGeom& g = l.pool;
    JsonObject j;
    j.str("id", layer_id(l)).str("layer", l.name).str("kind", "pool");
    j.num("n", double(g.n)).num("h", double(g.h)).num("w", double(g.w)).num("c", double(g.c));
    j.num("kh", g.kh).num("kw", g.kw).num("sh", g.sh).num("sw", g.sw);
    j.num("oh", double(g.oh)).num("ow", double(g.ow)).num("bytes", op_bytes(l, "pool_fwd"));
    return j.dump();
}

// --dump: every layer's inputs and minicnn's outputs, for bench/torch_ops.py.
int run_dump(const Options& o) {
    std::vector<std::string> entries;
    for (const Layer& l : all_layers()) {
        if (!selected(o, l) || l.gpu_only) continue;
        const std::string base = o.dump_dir + "/" + layer_id(l) + "_";
        if (l.kind == LayerKind::conv) {
            ConvData d(l);
            for (const auto& op : layer_ops(l)) conv_op(l, d, op)();
            write_raw(base + "inp.f32", d.inp);
            write_raw(base + "weight.f32", d.weight);
            write_raw(base + "bias.f32", d.bias);
            write_raw(base + "dout.f32", d.dout);
            write_raw(base + "out.f32", d.out);
            write_raw(base + "dinp.f32", d.dinp);
            write_raw(base + "dweight.f32", d.dweight);
            write_raw(base + "dbias.f32", d.dbias);
            entries.push_back(conv_manifest(l));
        } else {
            PoolData d(l);
            for (const auto& op : layer_ops(l)) pool_op(l, d, op)();
            write_raw(base + "inp.f32", d.inp);
            write_raw(base + "dout.f32", d.dout);
            write_raw(base + "out.f32", d.out);
            write_raw(base + "mask.i32", d.mask);
            write_raw(base + "dinp.f32", d.dinp);
            entries.push_back(pool_manifest(l));
        }
        std::printf("dumped %s\n", layer_id(l).c_str());
    }
    std::ofstream f(o.dump_dir + "/manifest.json");
    MINICNN_REQUIRE(f, "minicnn_bench: cannot write " << o.dump_dir << "/manifest.json");
    f << "{\"layout\": \"NHWC activations, HWIO weights, float32/int32 little-endian raw\",\n"
      << " \"layers\": [\n";
    for (std::size_t i = 0; i < entries.size(); ++i)
        f << "  " << entries[i] << (i + 1 < entries.size() ? ",\n" : "\n");
    f << "]}\n";
    return 0;
}

// Times minicnn's CPU backend on every selected layer. Returns the JSON objects.
std::vector<std::string> run_cpu(const Options& o) {
    std::vector<std::string> out;
    std::printf("minicnn CPU backend, %d threads, %s\n", minicnn::cpu::thread_count(),
                cpu_model().c_str());
    std::printf("%-16s %5s %-16s %11s %10s %6s\n", "layer", "batch", "op", "median ms",
                "GFLOP/s|GB/s", "reps");
    for (const Layer& l : all_layers()) {
        if (!selected(o, l) || l.gpu_only) continue;
        ConvData* cd = nullptr;
        PoolData* pd = nullptr;
        std::unique_ptr<ConvData> cown;
        std::unique_ptr<PoolData> pown;
        if (l.kind == LayerKind::conv)
            cd = (cown = std::make_unique<ConvData>(l)).get();
        else
            pd = (pown = std::make_unique<PoolData>(l)).get();
        for (const auto& op : layer_ops(l)) {
            auto fn = cd ? conv_op(l, *cd, op) : pool_op(l, *pd, op);
            if (pd && op == "pool_bwd") pool_op(l, *pd, "pool_fwd")();  // the mask it routes by
            const Timing t = time_cpu(fn, o.min_seconds);
            JsonObject j = result_json(l, op, "minicnn-cpu", t);
            j.num("threads", minicnn::cpu::thread_count());
            out.push_back(j.dump());
            const double rate =
                cd ? op_flops(l, op) / (t.median_ms * 1e6) : op_bytes(l, op) / (t.median_ms * 1e6);
            std::printf("%-16s %5lld %-16s %11.4f %10.2f %6d\n", l.name.c_str(),
                        static_cast<long long>(l.batch()), op.c_str(), t.median_ms, rate, t.reps);
            std::fflush(stdout);
        }
        for (const auto& op : api_ops(l)) {
            auto fn = cd ? api_conv_op(l, *cd, op) : api_pool_op(l, *pd, op);
            const Timing t = time_cpu(fn, o.min_seconds);
            JsonObject j = result_json(l, op, "minicnn-api", t);
            j.num("threads", minicnn::cpu::thread_count());
            out.push_back(j.dump());
            std::printf("%-16s %5lld %-16s %11.4f %10s %6d\n", l.name.c_str(),
                        static_cast<long long>(l.batch()), op.c_str(), t.median_ms, "", t.reps);
            std::fflush(stdout);
        }
    }
    return out;
}

int usage(const char* prog) {
    std::fprintf(stderr,
                 "usage: %s [--cpu] [--gpu] [--json FILE] [--dump DIR] [--filter SUBSTR]\n"
                 "          [--min-time SECONDS] [--gpu-reps N]\n",
                 prog);
    return 2;
}

int main_impl(int argc, char** argv) {
    Options o;
    for (int i = 0; i < argc; ++i) o.command_line += (i ? " " : "") + std::string(argv[i]);
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            MINICNN_REQUIRE(i + 1 < argc, "minicnn_bench: " << a << " needs a value");
            return argv[++i];
        };
        if (a == "--cpu")
            o.cpu = true;
        else if (a == "--gpu")
            o.gpu = true;
        else if (a == "--json")
            o.json_path = next();
        else if (a == "--dump")
            o.dump_dir = next();
        else if (a == "--filter")
            o.filter = next();
        else if (a == "--min-time")
            o.min_seconds = std::stod(next());
        else if (a == "--gpu-reps")
            o.gpu_reps = std::stoi(next());
        else if (a == "-h" || a == "--help")
            return usage(argv[0]), 0;
        else {
            std::fprintf(stderr, "minicnn_bench: unknown argument '%s'\n", a.c_str());
            return usage(argv[0]);
        }
    }
    if (!o.cpu && !o.gpu) return usage(argv[0]);
    if (!o.dump_dir.empty()) {
        MINICNN_REQUIRE(o.cpu && !o.gpu, "minicnn_bench: --dump goes with --cpu only");
        return run_dump(o);
    }

    std::vector<std::string> results;
    JsonObject meta;
    meta.str("command", o.command_line);
    if (o.cpu) {
        auto r = run_cpu(o);
        results.insert(results.end(), r.begin(), r.end());
        meta.str("cpu_model", cpu_model()).num("cpu_threads", minicnn::cpu::thread_count());
    }
    if (o.gpu) {
#if defined(MINICNN_BENCH_CUDNN)
        std::string skip, device;
        auto r = run_gpu(o, &skip, &device);
        results.insert(results.end(), r.begin(), r.end());
        if (!skip.empty()) {
            std::printf("GPU benchmarks skipped: %s\n", skip.c_str());
            meta.str("gpu_skipped", skip);
        } else {
            meta.str("gpu", device);
        }
#else
        const char* why =
            "this build has no CUDA backend or no cuDNN (configure with "
            "-DMINICNN_CUDA=ON on a machine with cuDNN)";
        std::printf("GPU benchmarks skipped: %s\n", why);
        meta.str("gpu_skipped", why);
#endif
    }
    if (!o.json_path.empty()) {
        std::ofstream f(o.json_path);
        MINICNN_REQUIRE(f, "minicnn_bench: cannot write " << o.json_path);
        f << "{\"meta\": " << meta.dump() << ",\n \"results\": [\n";
        for (std::size_t i = 0; i < results.size(); ++i)
            f << "  " << results[i] << (i + 1 < results.size() ? ",\n" : "\n");
        f << "]}\n";
    }
    return 0;
}

}  // namespace
}  // namespace minicnn::bench

int main(int argc, char** argv) {
    try {
        return minicnn::bench::main_impl(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "minicnn_bench: %s\n", e.what());
        return 1;
    }
}
