// Which kernels a GPU runs as compiled for its own generation, asked before taking a path that needs it
// (tensor-core attention).
#include "runner/backend/gpu/launch.h"

#include <map>
#include <mutex>
#include <tuple>

namespace runner::gpu {

#if defined(OAR_GPU_CUDA)

namespace {

bool ask(const void* kernel, int device, int major) {
    int capability = 0;
    cudaFuncAttributes attributes{};
    const bool runs = cudaDeviceGetAttribute(&capability, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess &&
                      capability >= major && cudaFuncGetAttributes(&attributes, kernel) == cudaSuccess &&
                      attributes.ptxVersion >= 10 * major;
    (void)cudaGetLastError();
    return runs;
}

}  // namespace

bool runs_compiled_for(const void* kernel, int major) {
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    // Asked on every launch that depends on it: each answer is looked up once.
    static std::mutex mutex;
    static std::map<std::tuple<const void*, int, int>, bool> known;
    const std::lock_guard lock(mutex);
    const auto [at, inserted] = known.try_emplace({kernel, device, major}, false);
    if (inserted) at->second = ask(kernel, device, major);
    return at->second;
}

#else

bool runs_compiled_for(const void*, int) { return false; }

#endif

}  // namespace runner::gpu
