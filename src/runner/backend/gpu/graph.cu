// Recorded streams (CUDA graphs, hipGraph on ROCm): one launch for a decode step's kernels.
#include <memory>

#include "runner/backend/gpu/backend.h"
#include "runner/backend/gpu/check.h"

namespace runner::gpu {

namespace {

struct GraphDestroy {
    void operator()(void* g) const noexcept { (void)cudaGraphDestroy(static_cast<cudaGraph_t>(g)); }
};

}  // namespace

void GraphExecDestroy::operator()(void* g) const noexcept {
    (void)cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(g));
}

Graph::Graph(const Stream& stream, const std::function<void()>& enqueue) {
    const auto s = static_cast<cudaStream_t>(stream.handle());
    // Thread-local: the host threads of split layers and the ring's copies may call the runtime meanwhile.
    GPU_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t recorded = nullptr;
    try {
        enqueue();
    } catch (...) {
        // The stream leaves capture mode whatever was recorded.
        if (cudaStreamEndCapture(s, &recorded) == cudaSuccess) (void)cudaGraphDestroy(recorded);
        (void)cudaGetLastError();
        throw;
    }
    GPU_CHECK(cudaStreamEndCapture(s, &recorded));
    const std::unique_ptr<void, GraphDestroy> graph(recorded);
    cudaGraphExec_t exec = nullptr;
    GPU_CHECK(cudaGraphInstantiateWithFlags(&exec, recorded, 0));
    exec_.reset(exec);
}

void Graph::launch(const Stream& stream) const {
    GPU_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_.get()), static_cast<cudaStream_t>(stream.handle())));
}

bool graphs_by_default() {
#if defined(OAR_GPU_HIP)
    return false;
#else
    return true;
#endif
}

}  // namespace runner::gpu
