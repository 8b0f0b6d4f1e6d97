// Recorded streams (CUDA graphs, hipGraph on ROCm): one launch for a decode step's kernels.
#include <memory>

#include "runner/backend/gpu/backend.h"
#include "runner/backend/gpu/check.h"

namespace runner::gpu {

namespace {

bool refused = false;  // set only by tests

struct GraphDestroy {
    void operator()(void* g) const noexcept { (void)cudaGraphDestroy(static_cast<cudaGraph_t>(g)); }
};

}  // namespace

void GraphExecDestroy::operator()(void* g) const noexcept {
    (void)cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(g));
}

Graph::Graph(const Stream& stream, const std::function<void()>& enqueue) {
    const auto s = static_cast<cudaStream_t>(stream.handle());
    // Thread-local: other threads of the process (another engine, a selftest) may call the runtime meanwhile.
    GPU_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t recorded = nullptr;
    try {
        enqueue();
        if (refused) throw Error("graph recording refused (tests: refuse_graphs)");
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

void refuse_graphs(bool on) { refused = on; }

bool graphs_by_default() {
#if defined(OAR_GPU_HIP)
    return false;
#else
    return true;
#endif
}

}  // namespace runner::gpu
