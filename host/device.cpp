// host/device.cpp — choosing the backend: Device::auto_() is CUDA when this build has it and a GPU
// is visible, the CPU otherwise; an explicit CUDA request where none is available says why. What
// the build has comes from the CUDA seam (host/cuda_ops.h), not from the preprocessor.
#include "minicnn/device.h"

#include <cstdlib>
#include <string>

#include "cuda_ops.h"
#include "minicnn/error.h"

namespace minicnn {

Device Device::parse(const std::string& s) {
    if (s == "auto") return auto_();
    if (s == "cpu") return cpu();
    if (s == "cuda" || s == "gpu") return cuda(0);
    if (s.rfind("cuda:", 0) == 0 && s.size() > 5) {
        const std::string num = s.substr(5);
        char* end = nullptr;
        const long idx = std::strtol(num.c_str(), &end, 10);
        if (end && *end == '\0' && idx >= 0 && idx < 1024) return cuda(static_cast<int>(idx));
    }
    MINICNN_REQUIRE(
        false, "device must be \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got \"" << s << "\"");
    return {};
}

std::string Device::str() const {
    switch (backend) {
        case Backend::auto_:
            return "auto";
        case Backend::cpu:
            return "cpu";
        case Backend::cuda:
            return "cuda:" + std::to_string(index);
    }
    return "?";
}

bool built_with_cuda() {
    return cuda_ops::built();
}

int cuda_device_count() {
    std::string reason;
    return cuda_ops::device_count(&reason);
}

std::string cuda_unavailable_reason() {
    std::string reason;
    if (cuda_ops::device_count(&reason) > 0) return "";
    return reason.empty() ? "no CUDA device is visible" : reason;
}

Backend resolve_backend(const Device& d) {
    switch (d.backend) {
        case Backend::cpu:
            return Backend::cpu;
        case Backend::auto_:
            return cuda_device_count() > 0 ? Backend::cuda : Backend::cpu;
        case Backend::cuda: {
            const int count = cuda_device_count();
            if (count == 0)
                throw DeviceError("CUDA device requested but unavailable: " +
                                  cuda_unavailable_reason());
            if (d.index < 0 || d.index >= count)
                throw DeviceError("CUDA device " + std::to_string(d.index) +
                                  " requested but only " + std::to_string(count) + " visible");
            return Backend::cuda;
        }
    }
    return Backend::cpu;
}

}  // namespace minicnn
