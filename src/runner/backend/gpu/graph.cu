// Recorded streams (CUDA graphs, hipGraph on ROCm): one launch for a decode step's kernels.
#include <memory>

#include "runner/backend/gpu/backend.h"
#include "runner/backend/gpu/check.h"
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

bool refused = false;  // set only by tests

// launch_overlapped's switch: on while this thread records a graph on a device that overlaps launches.
thread_local bool overlapping = false;

// The device runs programmatic dependent launches and this build's kernels for it were compiled for sm_90 or
// later, so that their wait_for_previous_kernel is not a no-op (a build for sm_80 alone runs as PTX there).
#if defined(OAR_GPU_CUDA)
__global__ void empty_kernel() {}
#endif

bool device_overlaps_launches() {
#if defined(OAR_GPU_CUDA)
    int device = 0, major = 0;
    GPU_CHECK(cudaGetDevice(&device));
    GPU_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    cudaFuncAttributes compiled{};
    GPU_CHECK(cudaFuncGetAttributes(&compiled, empty_kernel));
    return major >= 9 && compiled.ptxVersion >= 90;
#else
    return false;
#endif
}

struct Overlapping {
    explicit Overlapping(bool on) { overlapping = on; }
    ~Overlapping() { overlapping = false; }
    Overlapping(const Overlapping&) = delete;
    Overlapping& operator=(const Overlapping&) = delete;
};

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
        const Overlapping overlap(device_overlaps_launches());
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

bool overlap_launches() { return overlapping; }

void refuse_graphs(bool on) { refused = on; }

bool graphs_by_default() {
#if defined(OAR_GPU_HIP)
    return false;
#else
    return true;
#endif
}

}  // namespace runner::gpu
