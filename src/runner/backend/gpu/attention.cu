// Causal grouped-query attention, flash style: keys are visited in tiles with a running maximum and
// sum (online softmax), so memory is O(tile), not O(n_tokens * n_ctx). A prompt shares each K/V
// tile among a block of queries. For a few tokens (decode) scores are computed a warp per key,
// lanes across head_dim, so that key rows are read coalesced, and the keys are split across blocks
// too (flash-decoding), the partial results merged by a second kernel, so that a long context keeps
// the whole GPU busy. Prompts on GPUs with tensor cores and an f16 cache take attention_tensor.cu.
// The kernels here read either cache type and compute in f32.
#include <algorithm>
#include <cmath>

#include "runner/backend/gpu/attention_tensor.h"
#include "runner/backend/gpu/block_reduce.h"
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

constexpr int threads = 128;       // per block
constexpr int key_tile = 128;      // keys per tile
constexpr int max_head_dim = 256;  // two output dimensions per thread at most
constexpr int keys_per_split = 512;
constexpr int max_splits = 64;

__device__ inline float kv_at(const float* cache, std::size_t i) { return cache[i]; }
__device__ inline float kv_at(const unsigned short* cache, std::size_t i) { return f16_to_f32(cache[i]); }

// One block per (token, head, split): keys [split * keys_per_split, ...) up to the token's position.
// Writes the normalized output when there is one split, else the partial (max, sum, unnormalized
// output) for attention_merge_kernel.
template <class T>
__global__ void attention_kernel(float* out, float* partial, const float* q, const T* k_cache, const T* v_cache,
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
            const T* kr = k_cache + static_cast<std::size_t>(k0 + j) * kv_stride + kv_head * head_dim;
            float dot = 0.f;
            for (int d = lane; d < head_dim; d += warp_size) dot += qs[d] * kv_at(kr, d);
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
            const T* vc = v_cache + static_cast<std::size_t>(k0) * kv_stride + kv_head * head_dim + d;
            for (int j = 0; j < tile_keys; ++j) a += ps[j] * kv_at(vc, static_cast<std::size_t>(j) * kv_stride);
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

// A prompt: a block per (head, QB consecutive query tokens); K and V tiles of KT keys are loaded
// into shared memory once for all QB queries (rows padded against bank conflicts). Each of the 4
// warps owns QB / 4 queries; in scoring a lane takes a key, in the weighted sum a lane takes
// head dimensions. HD is the largest head_dim the instance serves.
template <class T, int HD, int QB, int KT>
__global__ void attention_prompt_kernel(float* out, const float* q, const T* k_cache, const T* v_cache,
                                        const int* positions, int n_tokens, int n_head, int n_head_kv, int head_dim,
                                        float scale) {
    constexpr int n_warps = 4, per_warp = QB / n_warps, dims_per_lane = HD / warp_size;
    static_assert(QB % n_warps == 0 && HD % warp_size == 0 && KT <= warp_size);
    __shared__ float qs[QB][HD + 1];
    __shared__ float ks[KT][HD + 1];
    __shared__ float vs[KT][HD];
    const int h = blockIdx.y, t0 = blockIdx.x * QB;
    const int kv_head = h / (n_head / n_head_kv);
    const std::size_t kv_stride = static_cast<std::size_t>(n_head_kv) * head_dim;
    const int tid = static_cast<int>(threadIdx.x), warp = tid / warp_size, lane = tid % warp_size;

    for (int e = tid; e < QB * head_dim; e += blockDim.x) {
        const int i = e / head_dim, d = e % head_dim, t = t0 + i;
        qs[i][d] = t < n_tokens ? q[(static_cast<std::size_t>(t) * n_head + h) * head_dim + d] : 0.f;
    }
    int last_key = 0;  // the block's largest position: keys beyond it are masked for every query
    for (int i = 0; i < QB && t0 + i < n_tokens; ++i) last_key = max(last_key, positions[t0 + i]);

    float m[per_warp], l[per_warp], acc[per_warp][dims_per_lane];
    int pos[per_warp];
    for (int i = 0; i < per_warp; ++i) {
        m[i] = -INFINITY, l[i] = 0.f;
        const int t = t0 + warp * per_warp + i;
        pos[i] = t < n_tokens ? positions[t] : -1;
        for (int k = 0; k < dims_per_lane; ++k) acc[i][k] = 0.f;
    }
    for (int k0 = 0; k0 <= last_key; k0 += KT) {
        __syncthreads();  // the previous tile is no longer read
        for (int e = tid; e < KT * head_dim; e += blockDim.x) {
            const int j = e / head_dim, d = e % head_dim, key = k0 + j;
            const bool in = key <= last_key;
            const std::size_t at = static_cast<std::size_t>(key) * kv_stride + kv_head * head_dim + d;
            ks[j][d] = in ? kv_at(k_cache, at) : 0.f;
            vs[j][d] = in ? kv_at(v_cache, at) : 0.f;
        }
        __syncthreads();
        for (int i = 0; i < per_warp; ++i) {
            if (pos[i] < k0) continue;  // every key of the tile is in this query's future
            const int qi = warp * per_warp + i;
            float s = -INFINITY;
            if (lane < KT && k0 + lane <= pos[i]) {
                float dot = 0.f;
                for (int d = 0; d < head_dim; ++d) dot += qs[qi][d] * ks[lane][d];
                s = dot * scale;
            }
            const float m_new = fmaxf(m[i], warp_max(s));
            const float p = s == -INFINITY ? 0.f : expf(s - m_new);
            const float correction = expf(m[i] - m_new);
            l[i] = l[i] * correction + warp_sum(p);
            for (int k = 0; k < dims_per_lane; ++k) acc[i][k] *= correction;
            for (int j = 0; j < KT; ++j) {
#if defined(OAR_GPU_HIP)
                const float pj = __shfl(p, j, warp_size);
#else
                const float pj = __shfl_sync(0xffffffffu, p, j, warp_size);
#endif
                for (int k = 0; k < dims_per_lane; ++k) {
                    const int d = lane + k * warp_size;
                    if (d < head_dim) acc[i][k] += pj * vs[j][d];
                }
            }
            m[i] = m_new;
        }
    }
    for (int i = 0; i < per_warp; ++i) {
        const int t = t0 + warp * per_warp + i;
        if (t >= n_tokens) continue;
        float* oh = out + (static_cast<std::size_t>(t) * n_head + h) * head_dim;
        for (int k = 0; k < dims_per_lane; ++k) {
            const int d = lane + k * warp_size;
            if (d < head_dim) oh[d] = acc[i][k] / l[i];
        }
    }
}

// Prompts of at least this many tokens take the tiled kernel.
constexpr int prompt_min_tokens = 16;

template <class T, int HD, int QB, int KT>
void launch_prompt_tiles(float* out, const float* q, const void* k_cache, const void* v_cache, const int* positions,
                         int n_tokens, int n_head, int n_head_kv, int head_dim, float scale, cudaStream_t s) {
    const dim3 grid(static_cast<unsigned>((n_tokens + QB - 1) / QB), static_cast<unsigned>(n_head));
    attention_prompt_kernel<T, HD, QB, KT><<<grid, 4 * warp_size, 0, s>>>(out, q, static_cast<const T*>(k_cache),
                                                                          static_cast<const T*>(v_cache), positions,
                                                                          n_tokens, n_head, n_head_kv, head_dim, scale);
}

template <class T>
void launch_prompt(float* out, const float* q, const void* k_cache, const void* v_cache, const int* positions,
                   int n_tokens, int n_head, int n_head_kv, int head_dim, float scale, cudaStream_t s) {
    if (head_dim <= 64)
        launch_prompt_tiles<T, 64, 16, 32>(out, q, k_cache, v_cache, positions, n_tokens, n_head, n_head_kv, head_dim,
                                           scale, s);
    else if (head_dim <= 128)
        launch_prompt_tiles<T, 128, 16, 32>(out, q, k_cache, v_cache, positions, n_tokens, n_head, n_head_kv, head_dim,
                                            scale, s);
    else
        launch_prompt_tiles<T, 256, 8, 16>(out, q, k_cache, v_cache, positions, n_tokens, n_head, n_head_kv, head_dim,
                                           scale, s);
}

template <class T>
void launch_decode(float* out, float* partial, const float* q, const void* k_cache, const void* v_cache,
                   const int* positions, int n_pairs, int n_head, int n_head_kv, int head_dim, float scale,
                   int n_splits, cudaStream_t s) {
    const dim3 grid(static_cast<unsigned>(n_pairs), static_cast<unsigned>(n_splits));
    attention_kernel<T><<<grid, threads, 0, s>>>(out, partial, q, static_cast<const T*>(k_cache),
                                                 static_cast<const T*>(v_cache), positions, n_head, n_head_kv, head_dim,
                                                 scale, n_splits);
}

__global__ void to_f16_kernel(unsigned short* dst, const float* src, std::size_t n) {
    const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = f32_to_f16(src[i]);
}

int splits_for(int n_pairs, int n_ctx) {
    // Enough blocks to fill a large GPU (~132 SMs) when the pairs alone do not.
    if (n_pairs >= 256) return 1;
    const int by_keys = (n_ctx + keys_per_split - 1) / keys_per_split;
    return std::max(1, std::min({by_keys, max_splits, (512 + n_pairs - 1) / n_pairs}));
}

}  // namespace

std::size_t attention_scratch_bytes(int n_tokens, int n_head, int head_dim, int n_ctx) {
    if (n_tokens >= prompt_min_tokens) return 0;
    const int n_splits = splits_for(n_tokens * n_head, n_ctx);
    if (n_splits == 1) return 0;
    return static_cast<std::size_t>(n_tokens) * n_head * n_splits * (head_dim + 2) * sizeof(float);
}

bool attention_on_tensor_cores(KvType kv_type, int head_dim) {
    return kv_type == KvType::f16 && tensor_attention_supported(head_dim);
}

void store_kv(void* cache, KvType type, std::size_t offset, const float* src, std::size_t n, const Stream& stream) {
    if (n == 0) return;
    if (type == KvType::f32)
        copy_on_device(static_cast<float*>(cache) + offset, src, n * sizeof(float), stream);
    else
        to_f16_kernel<<<static_cast<unsigned>((n + threads - 1) / threads), threads, 0, native(stream)>>>(
            static_cast<unsigned short*>(cache) + offset, src, n);
    GPU_CHECK_LAUNCH();
}

void attention(float* out, const float* q, const void* k_cache, const void* v_cache, KvType kv_type, int n_tokens,
               const int* positions, int n_head, int n_head_kv, int head_dim, int n_ctx, float* scratch,
               const Stream& stream) {
    if (n_tokens == 0) return;
    if (head_dim > max_head_dim || n_head % n_head_kv != 0)
        throw Error("attention: head_dim " + std::to_string(head_dim) + " with " + std::to_string(n_head) + "/" +
                    std::to_string(n_head_kv) +
                    " heads is not supported (head_dim <= 256, n_head a multiple of n_head_kv)");
    const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
    const bool f16 = kv_type == KvType::f16;
    if (n_tokens >= prompt_min_tokens) {
        if (attention_on_tensor_cores(kv_type, head_dim))
            attention_prompt_tensor(out, q, static_cast<const unsigned short*>(k_cache),
                                    static_cast<const unsigned short*>(v_cache), positions, n_tokens, n_head, n_head_kv,
                                    head_dim, scale, native(stream));
        else
            (f16 ? launch_prompt<unsigned short> : launch_prompt<float>)(out, q, k_cache, v_cache, positions, n_tokens,
                                                                         n_head, n_head_kv, head_dim, scale,
                                                                         native(stream));
        GPU_CHECK_LAUNCH();
        return;
    }
    const int n_pairs = n_tokens * n_head;
    const int n_splits = scratch ? splits_for(n_pairs, n_ctx) : 1;
    (f16 ? launch_decode<unsigned short> : launch_decode<float>)(out, scratch, q, k_cache, v_cache, positions, n_pairs,
                                                                 n_head, n_head_kv, head_dim, scale, n_splits,
                                                                 native(stream));
    GPU_CHECK_LAUNCH();
    if (n_splits > 1) {
        attention_merge_kernel<<<n_pairs, threads, 0, native(stream)>>>(out, scratch, head_dim, n_splits);
        GPU_CHECK_LAUNCH();
    }
}

}  // namespace runner::gpu
