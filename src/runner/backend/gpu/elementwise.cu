// SwiGLU for passes too long for norm_matmul_swiglu's fused kernel: it touches each element once.
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

constexpr int threads = 256;

unsigned blocks_for(std::size_t n) { return static_cast<unsigned>((n + threads - 1) / threads); }

__global__ void swiglu_kernel(float* gate, const float* up, std::size_t n) {
    const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) {
        const float g = gate[i];
        gate[i] = g / (1.f + expf(-g)) * up[i];
    }
}

}  // namespace

void swiglu(float* gate, const float* up, std::size_t n, const Stream& stream) {
    if (n == 0) return;
    swiglu_kernel<<<blocks_for(n), threads, 0, native(stream)>>>(gate, up, n);
    GPU_CHECK_LAUNCH();
}

}  // namespace runner::gpu
