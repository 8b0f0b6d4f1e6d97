#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

// One block per (token, head); thread i rotates the pair (i, i + head_dim / 2).
__global__ void rope_kernel(float* x, int n_heads, int head_dim, const float* inv_freq, const int* positions) {
    const int t = blockIdx.x / n_heads;
    float* v = x + static_cast<std::size_t>(blockIdx.x) * head_dim;
    const int half = head_dim / 2;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float s, c;
        sincosf(static_cast<float>(positions[t]) * inv_freq[i], &s, &c);
        const float a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
    }
}

}  // namespace

void rope(float* x, int n_tokens, int n_heads, int head_dim, const float* inv_freq, const int* positions,
          const Stream& stream) {
    if (n_tokens == 0) return;
    rope_kernel<<<n_tokens * n_heads, 64, 0, native(stream)>>>(x, n_heads, head_dim, inv_freq, positions);
    GPU_CHECK_LAUNCH();
}

}  // namespace runner::gpu
