// cuda/engine_cuda.cpp — CudaEngine (cuda/engine_cuda.h): its CUDA graphs, and make_cuda_engine.
#include "engine_cuda.h"

#include <cuda_runtime.h>

#include <memory>

namespace minicnn {

namespace {

// A captured graph and its executable instance, launched on the engine's stream.
class CudaGraph final : public EngineGraph {
public:
    CudaGraph(int device, cudaStream_t stream, cudaGraph_t graph)
        : device_(device), stream_(stream), graph_(graph) {}
    ~CudaGraph() override {
        cuda::release_on_device(device_, [this] {
            if (exec_) (void)cudaGraphExecDestroy(exec_);
            if (graph_) (void)cudaGraphDestroy(graph_);
        });
    }
    CudaGraph(const CudaGraph&) = delete;
    CudaGraph& operator=(const CudaGraph&) = delete;

    void instantiate() { MINICNN_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0)); }
    void launch() override {
        cuda::DeviceGuard guard(device_);
        MINICNN_CUDA_CHECK(cudaGraphLaunch(exec_, stream_));
    }

private:
    int device_;
    cudaStream_t stream_;
    cudaGraph_t graph_ = nullptr;
    cudaGraphExec_t exec_ = nullptr;
};

}  // namespace

// Global capture mode: a call on any thread that could synchronise or allocate during the
// capture (cudaMalloc, cudaMemcpy, ...) fails instead of silently breaking the graph.
std::unique_ptr<EngineGraph> CudaEngine::capture(const std::function<void()>& enqueue) {
#if defined(MINICNN_CUDA_SYNC_CHECK)
    // Every launch check synchronises the device, which a capture forbids: run unrecorded.
    (void)enqueue;
    return nullptr;
#else
    cuda::DeviceGuard guard(ctx_.device());
    MINICNN_CUDA_CHECK(cudaStreamBeginCapture(ctx_.stream(), cudaStreamCaptureModeGlobal));
    try {
        enqueue();
    } catch (...) {
        // End the capture so the stream is usable again; the partial graph is discarded.
        cudaGraph_t partial = nullptr;
        if (cudaStreamEndCapture(ctx_.stream(), &partial) == cudaSuccess && partial)
            (void)cudaGraphDestroy(partial);
        (void)cudaGetLastError();
        throw;
    }
    cudaGraph_t graph = nullptr;
    MINICNN_CUDA_CHECK(cudaStreamEndCapture(ctx_.stream(), &graph));
    auto g = std::make_unique<CudaGraph>(ctx_.device(), ctx_.stream(), graph);
    g->instantiate();
    return g;
#endif
}

std::unique_ptr<Engine> make_cuda_engine(int device_index) {
    return std::make_unique<CudaEngine>(device_index);
}

}  // namespace minicnn
