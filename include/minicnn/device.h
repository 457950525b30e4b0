// minicnn/device.h — where an operation runs.
//
// Every operation of the functional API takes a Device as its last argument. Device::auto_() (the
// default) runs on the GPU when minicnn was built with CUDA and a GPU is visible, on the CPU otherwise.
// Asking for CUDA where there is none is an error that says why, never a silent fallback.
#pragma once

#include <string>

namespace minicnn {

namespace cuda {
class Context;  // stream + cuBLAS handle (cuda/context.h); only exists in CUDA builds
}

enum class Backend { auto_, cpu, cuda };

struct Device {
    Backend backend = Backend::auto_;
    int index = 0;                    // CUDA device ordinal
    cuda::Context* context = nullptr; // optional: run on this context's stream (not owned)

    static Device auto_() { return {}; }
    static Device cpu() { return {Backend::cpu, 0, nullptr}; }
    static Device cuda(int index = 0) { return {Backend::cuda, index, nullptr}; }
    // "auto", "cpu", "cuda" or "cuda:N"; anything else is an ArgumentError naming the value.
    static Device parse(const std::string& s);
    std::string str() const;
};

// True when this build of minicnn contains the CUDA backend.
bool built_with_cuda();
// Number of visible CUDA devices (0 in CPU-only builds or when the driver finds none).
int cuda_device_count();
// A one-line reason why CUDA cannot be used here, or "" when it can.
std::string cuda_unavailable_reason();
// auto_ -> cpu or cuda; cuda where none is available throws DeviceError with the reason.
Backend resolve_backend(const Device& d);

}  // namespace minicnn
