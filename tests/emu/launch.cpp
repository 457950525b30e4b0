// tests/emu/launch.cpp — the CUDA emulator's kernel launch (emu::launch, which transform.py puts in
// place of k<<<grid, block, smem, stream>>>(args)): what a GPU checks before it runs a kernel, and
// the records tools/check-kernels.sh reads. The launch first runs the kernel's body in probe mode
// on the host (transform.py opens every kernel body with emu::kernel_probe, which answers with the
// kernel's __launch_bounds__ and its instantiated signature and returns), then:
//   - records the launch (EMU_LAUNCH_LOG: one line per distinct kernel, threads per block,
//     dynamic shared memory and opt-in, with the bound and the largest grid, at exit);
//   - refuses, with a report and the error a GPU returns, a block or grid beyond the limits of
//     compute capability 8.0 / 9.0 (cudaErrorInvalidConfiguration) and a block above the kernel's
//     __launch_bounds__ (cudaErrorLaunchOutOfResources);
//   - reports a kernel's first launch on a device inside a stream capture (lazy module loading);
//   - enqueues the blocks' execution (device.cpp's execute) on the stream.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>

#include "emu_internal.h"

namespace emu {

namespace {

// What kernel_probe hands back to the launch that probes.
struct Probe {
    bool on = false;
    unsigned bound = 0;
    const char* signature = "";
};
thread_local Probe t_probe;

// A kernel's name as c++filt writes its instantiation, less the namespaces: from GCC's
// __PRETTY_FUNCTION__ "void ns::{anonymous}::k(float*, int) [with int A = 8; bool B = true]",
// "k<8, true>". tools/check-kernels.sh joins ptxas's (demangled) names with these.
std::string kernel_name(const std::string& sig) {
    const std::string head = sig.substr(0, sig.find('('));
    const std::size_t colons = head.rfind("::"), blank = head.rfind(' ');
    std::string name = colons != std::string::npos  ? head.substr(colons + 2)
                       : blank != std::string::npos ? head.substr(blank + 1)
                                                    : head;
    const std::size_t with = sig.find(" [with ");
    if (with == std::string::npos) return name;
    const std::string args = sig.substr(with + 7, sig.size() - with - 8);
    std::string out;
    for (std::size_t pos = 0; pos < args.size();) {
        std::size_t end = args.find("; ", pos);
        if (end == std::string::npos) end = args.size();
        const std::string part = args.substr(pos, end - pos);
        pos = end + 2;
        // "int TH = 8" is a template parameter; "std::int64_t = long int" (no type before the
        // name) is GCC spelling out a typedef of the signature.
        const std::size_t eq = part.find(" = ");
        if (eq == std::string::npos || part.substr(0, eq).find(' ') == std::string::npos) continue;
        std::string v = part.substr(eq + 3);
        for (const char* q : {"{anonymous}::", "<unnamed>::", "minicnn::cuda::", "minicnn::"})
            for (std::size_t i; (i = v.find(q)) != std::string::npos;) v.erase(i, std::strlen(q));
        out += (out.empty() ? "" : ", ") + v;
    }
    return name + "<" + out + ">";
}

// EMU_LAUNCH_LOG: one record per distinct (kernel, threads per block, dynamic shared memory,
// opt-in), with the largest grid seen, appended to the file when the process exits.
struct LaunchKey {
    std::string kernel;
    unsigned long long threads;
    std::size_t dyn;
    bool optin;
    bool operator<(const LaunchKey& o) const {
        return std::tie(kernel, threads, dyn, optin) <
               std::tie(o.kernel, o.threads, o.dyn, o.optin);
    }
};
struct LaunchRecord {
    unsigned bound = 0;
    unsigned long long grid[3] = {0, 0, 0};
    long launches = 0;
    std::string site;
};
struct LaunchLog {
    std::map<LaunchKey, LaunchRecord> records;
    ~LaunchLog() {
        const char* path = std::getenv("EMU_LAUNCH_LOG");
        if (!path || !*path || records.empty()) return;
        FILE* f = std::fopen(path, "a");
        if (!f) return;
        for (const auto& [k, r] : records)
            std::fprintf(f,
                         "kernel=%s\tthreads=%llu\tdyn_smem=%zu\toptin=%d\tbound=%u\t"
                         "grid_max=%llux%llux%llu\tlaunches=%ld\tsite=%s\n",
                         k.kernel.c_str(), k.threads, k.dyn, int(k.optin), r.bound, r.grid[0],
                         r.grid[1], r.grid[2], r.launches, r.site.c_str());
        std::fclose(f);
    }
};
LaunchLog g_launch_log;
// The kernels each device has loaded (launched once, outside a capture), by signature.
std::set<std::pair<int, std::string>> g_loaded;

}  // namespace

void unload_kernels() {
    Lock lk(g_mu);
    g_loaded.clear();
}

bool kernel_probe(unsigned bound, const char* signature) {
    if (!t_probe.on) return false;
    t_probe.bound = bound;
    t_probe.signature = signature;
    return true;
}

void launch(const char* name, const char* file, int line, std::function<void()> body, dim3 grid,
            dim3 block, std::size_t dyn, cudaStream_t stream) {
    Lock lk(g_mu);
    if (g_sticky != cudaSuccess) {
        set_error(g_sticky);
        return;
    }
    // The kernel's first statement answers the probe (its bound and signature) and returns.
    t_probe = Probe{true, 0, ""};
    body();
    const Probe probe = t_probe;
    t_probe = Probe{};
    // (A body that is no rewritten kernel never answers: it is named as launched.)
    const std::string signature = *probe.signature ? probe.signature : name;
    const std::string kernel = *probe.signature ? kernel_name(signature) : name;
    const unsigned long long nt = 1ull * block.x * block.y * block.z;
    if (std::getenv("EMU_LAUNCH_LOG")) {
        LaunchRecord& r = g_launch_log.records[{kernel, nt, dyn, false}];
        r.bound = probe.bound;
        r.grid[0] = std::max<unsigned long long>(r.grid[0], grid.x);
        r.grid[1] = std::max<unsigned long long>(r.grid[1], grid.y);
        r.grid[2] = std::max<unsigned long long>(r.grid[2], grid.z);
        ++r.launches;
        if (r.site.empty()) r.site = std::string(file) + ":" + std::to_string(line);
    }
    // The limits of compute capability 9.0 (and 8.0): a block of at most 1024 threads (z at most
    // 64), a grid of at most 2^31-1 x 65535 x 65535 blocks.
    if (nt == 0 || nt > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.x == 0 ||
        grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 || grid.x > 2147483647u) {
        report("invalid launch configuration",
               "kernel %s (launched at %s:%d) with block (%u,%u,%u) = %llu threads (at most 1024, "
               "z at most 64) and grid (%u,%u,%u) (at most 2147483647 x 65535 x 65535)",
               kernel.c_str(), file, line, block.x, block.y, block.z, nt, grid.x, grid.y, grid.z);
        set_error(cudaErrorInvalidConfiguration);
        return;
    }
    if (probe.bound != 0 && nt > probe.bound) {
        report("launch bounds",
               "kernel %s (launched at %s:%d) with %llu threads per block, more than its "
               "__launch_bounds__(%u): cudaErrorLaunchOutOfResources",
               kernel.c_str(), file, line, nt, probe.bound);
        set_error(cudaErrorLaunchOutOfResources);
        return;
    }
    if (dyn > kSmemLimit) {
        set_error(cudaErrorInvalidValue);
        return;
    }
    const int device = t_device;
    if (stream && g_streams.count(as_stream(stream)) && as_stream(stream)->device != device) {
        note("wrong device",
             "kernel %s (launched at %s:%d) on a stream of device %d while "
             "device %d is current",
             name, file, line, as_stream(stream)->device, device);
        set_error(cudaErrorInvalidResourceHandle);
        return;
    }
    // Lazy module loading (CUDA_MODULE_LOADING=LAZY, the default since CUDA 12.2): a kernel is
    // loaded at its first launch on a device, and loading inside a stream capture fails there.
    const bool capturing =
        stream && g_streams.count(as_stream(stream)) && as_stream(stream)->capturing;
    if (g_loaded.insert({device, signature}).second && capturing) {
        report("lazy loading",
               "kernel %s (launched at %s:%d): its first launch on device %d is inside a stream "
               "capture, which a driver that loads modules lazily refuses; launch it once before "
               "capturing",
               kernel.c_str(), file, line, device);
    }
    auto shared_body = std::make_shared<std::function<void()>>(std::move(body));
    enqueue(stream, name,
            [=] { execute(name, file, line, *shared_body, grid, block, dyn, device); });
}

}  // namespace emu
