#include "runner/backend/gpu/block_reduce.h"
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

// One block per row.
__global__ void rmsnorm_kernel(float* out, const float* x, const void* weight, WeightType type, int n, float eps) {
    const float* row = x + static_cast<std::size_t>(blockIdx.x) * n;
    float* dst = out + static_cast<std::size_t>(blockIdx.x) * n;
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += row[i] * row[i];
    const float scale = rsqrtf(block_reduce<false>(ss) / n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = row[i] * scale * load_weight(weight, type, i);
}

}  // namespace

void rmsnorm(float* out, const float* x, const void* weight, WeightType type, int n_rows, int n, float eps,
             const Stream& stream) {
    if (n_rows == 0) return;
    rmsnorm_kernel<<<n_rows, 256, 0, native(stream)>>>(out, x, weight, type, n, eps);
    GPU_CHECK_LAUNCH();
}

}  // namespace runner::gpu
