// host/engine_select.cpp — make_engine: the training engine for a Device (minicnn/engine.h). The CPU
// engine is host/cpu/engine_cpu.cpp; the CUDA engine comes through the seam (make_cuda_engine, which a
// build without the CUDA backend implements as a DeviceError: host/no_cuda/cuda_ops_none.cpp).
#include "minicnn/device.h"
#include "minicnn/engine.h"

namespace minicnn {

std::unique_ptr<Engine> make_engine(const Device& device) {
    if (resolve_backend(device) == Backend::cuda) return make_cuda_engine(device.index);
    return make_cpu_engine();
}

}  // namespace minicnn
