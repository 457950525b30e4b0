// cuda/no_nccl/allreduce_none.cpp — cuda/nccl_allreduce.h in a CUDA build without NCCL: training on
// GPUs with more than one rank needs NCCL, so this says so.
#include "minicnn/error.h"
#include "nccl_allreduce.h"

namespace minicnn::cuda {

std::unique_ptr<EngineAllReduce> make_nccl_allreduce(Context&, Communicator& comm) {
    throw DeviceError("training on GPUs with " + std::to_string(comm.size()) +
                      " ranks sums the gradients with NCCL, and minicnn was built without it "
                      "(install NCCL where CUDA is, and configure again; or use --device cpu)");
}

}  // namespace minicnn::cuda
