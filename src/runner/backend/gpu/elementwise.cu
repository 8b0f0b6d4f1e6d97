// Steps that touch each element once: embedding lookup, SwiGLU, residual add.
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

constexpr int threads = 256;

unsigned blocks_for(std::size_t n) { return static_cast<unsigned>((n + threads - 1) / threads); }

__global__ void embed_kernel(float* x, const void* table, WeightType type, const int* tokens, int n_embd) {
    const std::size_t row = static_cast<std::size_t>(tokens[blockIdx.x]) * n_embd;
    for (int i = threadIdx.x; i < n_embd; i += blockDim.x)
        x[static_cast<std::size_t>(blockIdx.x) * n_embd + i] = load_weight(table, type, row + i);
}

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

}  // namespace

void embed(float* x, const void* table, WeightType type, const int* tokens, int n_tokens, int n_embd,
           const Stream& stream) {
    if (n_tokens == 0) return;
    embed_kernel<<<n_tokens, threads, 0, native(stream)>>>(x, table, type, tokens, n_embd);
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
