// Which kernels a GPU runs as compiled for its own generation, asked before taking a path that needs it
// (tensor-core attention, launches that overlap the previous kernel).
#include "runner/backend/gpu/launch.h"

#include <map>
#include <mutex>
#include <tuple>

namespace runner::gpu {

namespace {

bool early_on = true;  // changed only by tests, before the launches they compare

}  // namespace

void use_early_launches(bool on) { early_on = on; }

#if defined(OAR_GPU_CUDA)

namespace {

__global__ void probe_kernel() {}

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

bool launches_early(const void* kernel) { return early_on && runs_compiled_for(kernel, 9); }

bool early_launches() { return launches_early(reinterpret_cast<const void*>(probe_kernel)); }

#else

bool runs_compiled_for(const void*, int) { return false; }
bool launches_early(const void*) { return false; }
bool early_launches() { return false; }

#endif

}  // namespace runner::gpu
