// Causal grouped-query attention, flash style: keys are visited in tiles of one per thread, with a
// running maximum and sum (online softmax), so memory is O(tile), not O(n_tokens * n_ctx).
#include <cmath>

#include "runner/backend/gpu/block_reduce.h"
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

constexpr int key_tile = 128;      // threads per block, keys per tile
constexpr int max_head_dim = 256;  // two output dimensions per thread at most

// One block per (token, head).
__global__ void attention_kernel(float* out, const float* q, const float* k_cache, const float* v_cache,
                                 const int* positions, int n_head, int n_head_kv, int head_dim, float scale) {
    __shared__ float qs[max_head_dim];
    __shared__ float ps[key_tile];
    const int t = blockIdx.x / n_head, h = blockIdx.x % n_head;
    const int kv_head = h / (n_head / n_head_kv);
    const std::size_t kv_stride = static_cast<std::size_t>(n_head_kv) * head_dim;
    const float* qh = q + (static_cast<std::size_t>(t) * n_head + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) qs[d] = qh[d];
    __syncthreads();

    const int n_keys = positions[t] + 1;
    float m = -INFINITY, l = 0.f, acc[2] = {0.f, 0.f};
    for (int k0 = 0; k0 < n_keys; k0 += key_tile) {
        const int key = k0 + threadIdx.x;
        float s = -INFINITY;
        if (key < n_keys) {
            const float* kr = k_cache + static_cast<std::size_t>(key) * kv_stride + kv_head * head_dim;
            float dot = 0.f;
            for (int d = 0; d < head_dim; ++d) dot += qs[d] * kr[d];
            s = dot * scale;
        }
        const float m_new = fmaxf(m, block_reduce<true>(s));
        const float p = key < n_keys ? expf(s - m_new) : 0.f;
        ps[threadIdx.x] = p;
        const float tile_sum = block_reduce<false>(p);  // its barriers also publish ps
        const float correction = expf(m - m_new);
        l = l * correction + tile_sum;
        const int tile_keys = min(key_tile, n_keys - k0);
        for (int r = 0; r < 2; ++r) {
            const int d = threadIdx.x + r * key_tile;
            if (d >= head_dim) break;
            float a = acc[r] * correction;
            const float* vc = v_cache + static_cast<std::size_t>(k0) * kv_stride + kv_head * head_dim + d;
            for (int j = 0; j < tile_keys; ++j) a += ps[j] * vc[static_cast<std::size_t>(j) * kv_stride];
            acc[r] = a;
        }
        m = m_new;
        __syncthreads();  // ps is rewritten by the next tile
    }
    float* oh = out + (static_cast<std::size_t>(t) * n_head + h) * head_dim;
    for (int r = 0; r < 2; ++r) {
        const int d = threadIdx.x + r * key_tile;
        if (d < head_dim) oh[d] = acc[r] / l;
    }
}

}  // namespace

void attention(float* out, const float* q, const float* k_cache, const float* v_cache, int n_tokens,
               const int* positions, int n_head, int n_head_kv, int head_dim, const Stream& stream) {
    if (n_tokens == 0) return;
    if (head_dim > max_head_dim || n_head % n_head_kv != 0)
        throw Error("attention: head_dim " + std::to_string(head_dim) + " with " + std::to_string(n_head) + "/" +
                    std::to_string(n_head_kv) +
                    " heads is not supported (head_dim <= 256, n_head a multiple of n_head_kv)");
    const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
    attention_kernel<<<n_tokens * n_head, key_tile, 0, native(stream)>>>(out, q, k_cache, v_cache, positions, n_head,
                                                                         n_head_kv, head_dim, scale);
    GPU_CHECK_LAUNCH();
}

}  // namespace runner::gpu
