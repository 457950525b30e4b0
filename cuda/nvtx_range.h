// cuda/nvtx_range.h — an RAII NVTX range, so Nsight Systems shows each operation by name
// ("conv2d_forward", "maxpool2d_backward_mask", ...). NVTX3 is header-only; without a profiler
// attached a push/pop costs a few nanoseconds.
#pragma once

#include <nvtx3/nvToolsExt.h>

namespace minicnn::cuda {

class NvtxRange {
public:
    explicit NvtxRange(const char* name) { nvtxRangePushA(name); }
    ~NvtxRange() { nvtxRangePop(); }
    NvtxRange(const NvtxRange&) = delete;
    NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace minicnn::cuda
