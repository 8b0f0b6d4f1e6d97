// Steps that touch each element once: SwiGLU for passes too long for norm_matmul_swiglu's fused kernel,
// the host's share of a split layer added into the residual, and the f32 -> f16 conversion the KV
// cache and the BLAS share.
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

__global__ void add_kernel(float* x, const float* y, std::size_t n) {
    const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

__global__ void to_f16_kernel(unsigned short* dst, const float* src, std::size_t n) {
    const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = f32_to_f16(src[i]);
}

}  // namespace

void to_f16(unsigned short* dst, const float* src, std::size_t n, cudaStream_t stream) {
    if (n == 0) return;
    to_f16_kernel<<<blocks_for(n), threads, 0, stream>>>(dst, src, n);
    GPU_CHECK_LAUNCH();
}

void swiglu(float* gate, const float* up, std::size_t n, const Stream& stream) {
    if (n == 0) return;
    swiglu_kernel<<<blocks_for(n), threads, 0, native(stream)>>>(gate, up, n);
    GPU_CHECK_LAUNCH();
}

void add(float* x, const float* y, std::size_t n, const Stream& stream) {
    if (n == 0) return;
    add_kernel<<<blocks_for(n), threads, 0, native(stream)>>>(x, y, n);
    GPU_CHECK_LAUNCH();
}

}  // namespace runner::gpu
