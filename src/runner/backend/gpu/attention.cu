// Causal grouped-query attention, flash style: keys are visited in tiles with a running maximum and
// sum (online softmax), so memory is O(tile), not O(n_tokens * n_ctx). Scores are computed a warp
// per key, lanes across head_dim, so that key rows are read coalesced. When there are few (token,
// head) pairs, as in decode, the keys are split across blocks too (flash-decoding) and the partial
// results merged by a second kernel, so that a long context keeps the whole GPU busy.
#include <algorithm>
#include <cmath>

#include "runner/backend/gpu/block_reduce.h"
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

constexpr int threads = 128;       // per block
constexpr int key_tile = 128;      // keys per tile
constexpr int max_head_dim = 256;  // two output dimensions per thread at most
constexpr int keys_per_split = 512;
constexpr int max_splits = 64;

// One block per (token, head, split): keys [split * keys_per_split, ...) up to the token's position.
// Writes the normalized output when there is one split, else the partial (max, sum, unnormalized
// output) for attention_merge_kernel.
__global__ void attention_kernel(float* out, float* partial, const float* q, const float* k_cache, const float* v_cache,
                                 const int* positions, int n_head, int n_head_kv, int head_dim, float scale,
                                 int n_splits) {
    __shared__ float qs[max_head_dim];
    __shared__ float ps[key_tile];
    const int pair = blockIdx.x, split = blockIdx.y;
    const int t = pair / n_head, h = pair % n_head;
    const int kv_head = h / (n_head / n_head_kv);
    const std::size_t kv_stride = static_cast<std::size_t>(n_head_kv) * head_dim;
    const float* qh = q + (static_cast<std::size_t>(t) * n_head + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) qs[d] = qh[d];
    __syncthreads();

    const int n_keys = positions[t] + 1;
    const int begin = n_splits == 1 ? 0 : split * keys_per_split;
    const int end = n_splits == 1 ? n_keys : min(n_keys, begin + keys_per_split);
    const int tid = static_cast<int>(threadIdx.x);
    const int warp = tid / warp_size, lane = tid % warp_size, n_warps = static_cast<int>(blockDim.x) / warp_size;
    float m = -INFINITY, l = 0.f, acc[2] = {0.f, 0.f};
    for (int k0 = begin; k0 < end; k0 += key_tile) {
        const int tile_keys = min(key_tile, end - k0);
        for (int j = warp; j < tile_keys; j += n_warps) {
            const float* kr = k_cache + static_cast<std::size_t>(k0 + j) * kv_stride + kv_head * head_dim;
            float dot = 0.f;
            for (int d = lane; d < head_dim; d += warp_size) dot += qs[d] * kr[d];
            dot = warp_sum(dot);
            if (lane == 0) ps[j] = dot * scale;
        }
        __syncthreads();
        const float s = tid < tile_keys ? ps[tid] : -INFINITY;
        const float m_new = fmaxf(m, block_reduce<true>(s));
        const float p = tid < tile_keys ? expf(s - m_new) : 0.f;
        __syncthreads();  // every score is read before ps is overwritten with weights
        if (tid < tile_keys) ps[tid] = p;
        const float tile_sum = block_reduce<false>(p);  // its barriers also publish ps
        const float correction = expf(m - m_new);
        l = l * correction + tile_sum;
        for (int r = 0; r < 2; ++r) {
            const int d = threadIdx.x + r * threads;
            if (d >= head_dim) break;
            float a = acc[r] * correction;
            const float* vc = v_cache + static_cast<std::size_t>(k0) * kv_stride + kv_head * head_dim + d;
            for (int j = 0; j < tile_keys; ++j) a += ps[j] * vc[static_cast<std::size_t>(j) * kv_stride];
            acc[r] = a;
        }
        m = m_new;
        __syncthreads();  // ps is rewritten by the next tile
    }
    if (n_splits == 1) {
        float* oh = out + (static_cast<std::size_t>(t) * n_head + h) * head_dim;
        for (int r = 0; r < 2; ++r) {
            const int d = threadIdx.x + r * threads;
            if (d < head_dim) oh[d] = acc[r] / l;
        }
        return;
    }
    // partial: [pairs, n_splits, head_dim + 2] = unnormalized output, max, sum (empty splits: m = -inf, l = 0)
    float* ph = partial + (static_cast<std::size_t>(pair) * n_splits + split) * (head_dim + 2);
    for (int r = 0; r < 2; ++r) {
        const int d = threadIdx.x + r * threads;
        if (d < head_dim) ph[d] = acc[r];
    }
    if (threadIdx.x == 0) {
        ph[head_dim] = m;
        ph[head_dim + 1] = l;
    }
}

// One block per (token, head): rescales each split's partial to the common maximum and normalizes.
__global__ void attention_merge_kernel(float* out, const float* partial, int head_dim, int n_splits) {
    const int pair = blockIdx.x;
    const float* ph = partial + static_cast<std::size_t>(pair) * n_splits * (head_dim + 2);
    float m = -INFINITY;
    for (int s = 0; s < n_splits; ++s) m = fmaxf(m, ph[s * (head_dim + 2) + head_dim]);
    float l = 0.f;
    for (int s = 0; s < n_splits; ++s) {
        const float ms = ph[s * (head_dim + 2) + head_dim];
        if (ms != -INFINITY) l += ph[s * (head_dim + 2) + head_dim + 1] * expf(ms - m);
    }
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float a = 0.f;
        for (int s = 0; s < n_splits; ++s) {
            const float ms = ph[s * (head_dim + 2) + head_dim];
            if (ms != -INFINITY) a += ph[s * (head_dim + 2) + d] * expf(ms - m);
        }
        out[static_cast<std::size_t>(pair) * head_dim + d] = a / l;
    }
}

int splits_for(int n_pairs, int n_ctx) {
    // Enough blocks to fill a large GPU (~132 SMs) when the pairs alone do not.
    if (n_pairs >= 256) return 1;
    const int by_keys = (n_ctx + keys_per_split - 1) / keys_per_split;
    return std::max(1, std::min({by_keys, max_splits, (512 + n_pairs - 1) / n_pairs}));
}

}  // namespace

std::size_t attention_scratch_bytes(int n_tokens, int n_head, int head_dim, int n_ctx) {
    const int n_splits = splits_for(n_tokens * n_head, n_ctx);
    if (n_splits == 1) return 0;
    return static_cast<std::size_t>(n_tokens) * n_head * n_splits * (head_dim + 2) * sizeof(float);
}

void attention(float* out, const float* q, const float* k_cache, const float* v_cache, int n_tokens,
               const int* positions, int n_head, int n_head_kv, int head_dim, int n_ctx, float* scratch,
               const Stream& stream) {
    if (n_tokens == 0) return;
    if (head_dim > max_head_dim || n_head % n_head_kv != 0)
        throw Error("attention: head_dim " + std::to_string(head_dim) + " with " + std::to_string(n_head) + "/" +
                    std::to_string(n_head_kv) +
                    " heads is not supported (head_dim <= 256, n_head a multiple of n_head_kv)");
    const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
    const int n_pairs = n_tokens * n_head;
    const int n_splits = scratch ? splits_for(n_pairs, n_ctx) : 1;
    const dim3 grid(static_cast<unsigned>(n_pairs), static_cast<unsigned>(n_splits));
    attention_kernel<<<grid, threads, 0, native(stream)>>>(out, scratch, q, k_cache, v_cache, positions, n_head,
                                                           n_head_kv, head_dim, scale, n_splits);
    GPU_CHECK_LAUNCH();
    if (n_splits > 1) {
        attention_merge_kernel<<<n_pairs, threads, 0, native(stream)>>>(out, scratch, head_dim, n_splits);
        GPU_CHECK_LAUNCH();
    }
}

}  // namespace runner::gpu
