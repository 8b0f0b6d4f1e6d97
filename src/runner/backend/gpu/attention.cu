// Causal grouped-query attention, flash style: keys are visited in tiles with a running maximum and
// sum (online softmax), so memory is O(tile), not O(n_tokens * n_ctx). A prompt shares each K/V
// tile among a block of queries. For a few tokens (decode) a block serves the query heads of a KV
// group together, so each cache row is read once for all of them, and the keys are split across
// blocks too (flash-decoding), the partial results merged by a second kernel, so that a long context
// keeps the whole GPU busy. Prompts on GPUs with tensor cores and an f16 cache take
// attention_tensor.cu. The kernels here read either cache type and compute in f32.
#include <algorithm>
#include <bit>
#include <cmath>

#include "runner/backend/gpu/attention_tensor.h"
#include "runner/backend/gpu/block_reduce.h"
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

constexpr int threads = 128;       // per block of the merge
constexpr int max_head_dim = 256;  // what any kernel here serves

// Decode: each block serves up to decode_heads query heads of one KV group (Llama-3-8B's 4), so a
// key or value row read from the cache serves all of them. A block takes decode_keys keys at a
// time, four threads to a key while scoring, and the keys are split across blocks in slices of
// whole tiles until about decode_blocks blocks keep the GPU busy: each block's work is a short
// chain of dependent steps, so the GPU needs many of them at once. A block finds its keys from its
// token's position on the device, so that a recorded decode step replays for the next positions.
constexpr int decode_heads = 4;
constexpr int decode_threads = 128;
constexpr int decode_keys = decode_threads / 4;  // per tile
constexpr int decode_blocks = 1024;
constexpr int max_splits = 128;

__device__ inline float kv_at(const float* cache, std::size_t i) { return cache[i]; }
__device__ inline float kv_at(const unsigned short* cache, std::size_t i) { return f16_to_f32(cache[i]); }

// N consecutive elements of a row from `at`, in one load where they are whole and aligned
// (`aligned`: the row's length is a multiple of N), else one by one up to `n`.
template <class T, int N>
__device__ inline void load_run(const T* row, int at, int n, bool aligned, float* out) {
    struct alignas(N * sizeof(T)) Pack {
        T v[N];
    };
    if (aligned && at + N <= n) {
        const Pack p = *reinterpret_cast<const Pack*>(row + at);
        for (int k = 0; k < N; ++k) out[k] = kv_at(p.v, static_cast<std::size_t>(k));
    } else {
        for (int k = 0; k < N; ++k) out[k] = at + k < n ? kv_at(row, static_cast<std::size_t>(at + k)) : 0.f;
    }
}

// One block per (token, KV head, group of up to decode_heads query heads of it, split of the keys),
// the keys in tiles of decode_keys. Scoring: a quad of threads takes a key, each thread 8-element
// runs of its row (the quad's four runs adjacent, so a quad reads 64 contiguous bytes at a time),
// dotted with each head's query from shared memory and summed over the quad. A warp per head then
// turns the tile's scores into weights (online softmax: running maximum and sum per head). Values:
// each warp takes a quarter of the tile's keys with lanes across head_dim (coalesced rows, all in
// flight at once) and adds each row, weighted, for every head; the warps' sums are added in a fixed
// order. Writes the normalized output when there is one split, else the partial (max, sum,
// unnormalized output) for attention_merge_kernel; a split past the token's keys is an empty partial.
// HD: the largest head_dim the instance serves, a multiple of 32. `reaches_far`: the keys reach the cache's far rows (a
// test per row, which made attention over a whole cache's 4096 keys 3% slower).
template <class T, int HD, bool reaches_far>
__global__ void __launch_bounds__(decode_threads, 4)
    attention_decode_kernel(float* out, float* partial, const float* q, KvRows cache, const int* positions, int n_head,
                            int n_head_kv, int head_dim, float scale, int n_splits) {
    constexpr int H = decode_heads, KT = decode_keys, DPL = HD / 32, n_warps = decode_threads / warp_size;
    constexpr int runs = HD / 32;  // 8-element runs per thread of a quad
    constexpr int keys_per_warp = KT / n_warps;
    __shared__ float qs[H][HD];
    __shared__ float weights[H][KT];
    __shared__ float rescale[H], running_max[H], running_sum[H];
    __shared__ float sums[n_warps][H][HD];
    const int group = n_head / n_head_kv, chunks = (group + H - 1) / H;
    const int chunk = static_cast<int>(blockIdx.x) % chunks;
    const int kv_head = static_cast<int>(blockIdx.x) / chunks % n_head_kv;
    const int t = static_cast<int>(blockIdx.x) / chunks / n_head_kv, split = static_cast<int>(blockIdx.y);
    const int h0 = kv_head * group + chunk * H, n_h = min(H, group - chunk * H);
    const int tid = static_cast<int>(threadIdx.x), warp = tid / warp_size, lane = tid % warp_size;
    const int quad_key = tid / 4, sub = tid % 4;
    const std::size_t kv_stride = static_cast<std::size_t>(n_head_kv) * head_dim;
    const std::size_t head_at = static_cast<std::size_t>(kv_head) * head_dim;
    const bool aligned = head_dim % 8 == 0;

    for (int e = tid; e < H * HD; e += decode_threads) {
        const int h = e / HD, d = e % HD;
        qs[h][d] =
            h < n_h && d < head_dim ? q[(static_cast<std::size_t>(t) * n_head + h0 + h) * head_dim + d] * scale : 0.f;
    }
    if (tid < H) running_max[tid] = -INFINITY, running_sum[tid] = 0.f;
    float acc[H][DPL] = {};
    __syncthreads();

    const int n_keys = positions[t] + 1, keys_per_split = ((n_keys + KT - 1) / KT + n_splits - 1) / n_splits * KT;
    const int begin = split * keys_per_split, end = min(n_keys, begin + keys_per_split);
    for (int k0 = begin; k0 < end; k0 += KT) {
        const int tile_keys = min(KT, end - k0);
        float dot[H] = {};
        if (quad_key < tile_keys) {
            const T* kr = cache_row<const T, reaches_far>(cache, true, k0 + quad_key, kv_stride) + head_at;
            float kv[runs][8];
            for (int r = 0; r < runs; ++r) load_run<T, 8>(kr, (r * 4 + sub) * 8, head_dim, aligned, kv[r]);
            for (int r = 0; r < runs; ++r)
                for (int h = 0; h < H; ++h)
                    for (int e = 0; e < 8; ++e) dot[h] += qs[h][(r * 4 + sub) * 8 + e] * kv[r][e];
        }
        for (int h = 0; h < H; ++h) {
            const float score = quad_sum(dot[h]);
            if (sub == 0 && quad_key < tile_keys) weights[h][quad_key] = score;
        }
        __syncthreads();
        for (int h = warp; h < H; h += n_warps) {
            const float score = lane < tile_keys ? weights[h][lane] : -INFINITY;
            const float m_old = running_max[h], m_new = fmaxf(m_old, warp_max(score));
            const float p = lane < tile_keys ? expf(score - m_new) : 0.f;
            if (lane < KT) weights[h][lane] = p;
            const float tile_sum = warp_sum(p);
            if (lane == 0) {
                const float correction = expf(m_old - m_new);
                rescale[h] = correction;
                running_sum[h] = running_sum[h] * correction + tile_sum;
                running_max[h] = m_new;
            }
        }
        __syncthreads();
        for (int h = 0; h < H; ++h)
            for (int k = 0; k < DPL; ++k) acc[h][k] *= rescale[h];
        const int j0 = warp * keys_per_warp;
        float vr[keys_per_warp][DPL];
        for (int u = 0; u < keys_per_warp; ++u)
            if (j0 + u < tile_keys)
                load_run<T, DPL>(cache_row<const T, reaches_far>(cache, false, k0 + j0 + u, kv_stride) + head_at,
                                 lane * DPL, head_dim, head_dim % DPL == 0, vr[u]);
        for (int u = 0; u < keys_per_warp; ++u) {
            if (j0 + u >= tile_keys) break;
            for (int h = 0; h < H; ++h)
                for (int k = 0; k < DPL; ++k) acc[h][k] += weights[h][j0 + u] * vr[u][k];
        }
        __syncthreads();  // weights and rescale are rewritten by the next tile
    }

    for (int h = 0; h < H; ++h)
        for (int k = 0; k < DPL; ++k)
            if (lane * DPL + k < HD) sums[warp][h][lane * DPL + k] = acc[h][k];
    __syncthreads();
    for (int e = tid; e < n_h * head_dim; e += decode_threads) {
        const int h = e / head_dim, d = e % head_dim;
        float a = 0.f;
        for (int w = 0; w < n_warps; ++w) a += sums[w][h][d];
        const std::size_t pair = static_cast<std::size_t>(t) * n_head + h0 + h;
        if (n_splits == 1) {
            out[pair * head_dim + d] = a / running_sum[h];
            continue;
        }
        // partial: [pairs, n_splits, head_dim + 2] = unnormalized output, max, sum (empty splits: -inf, 0)
        float* ph = partial + (pair * n_splits + split) * (head_dim + 2);
        ph[d] = a;
        if (d == 0) ph[head_dim] = running_max[h], ph[head_dim + 1] = running_sum[h];
    }
}

// One block per (token, head): each split's weight (its maximum against the common one) computed
// once, in parallel over the splits; then each warp sums its share of the splits for every output
// dimension (a lane per dimension, eight splits' loads in flight), and the warps' sums are added.
__global__ void attention_merge_kernel(float* out, const float* partial, int head_dim, int n_splits) {
    constexpr int n_warps = threads / warp_size, dims = max_head_dim / warp_size;
    __shared__ float split_weight[max_splits];
    __shared__ float sums[n_warps][max_head_dim];
    const int pair = static_cast<int>(blockIdx.x), tid = static_cast<int>(threadIdx.x);
    const int warp = tid / warp_size, lane = tid % warp_size;
    const std::size_t stride = static_cast<std::size_t>(head_dim) + 2;
    const float* ph = partial + static_cast<std::size_t>(pair) * n_splits * stride;
    float m = -INFINITY;
    for (int s = tid; s < n_splits; s += threads) m = fmaxf(m, ph[s * stride + head_dim]);
    m = block_reduce<true>(m);
    float l = 0.f;
    for (int s = tid; s < n_splits; s += threads) {
        const float ms = ph[s * stride + head_dim];
        const float w = ms == -INFINITY ? 0.f : expf(ms - m);  // an empty split's partial output is zeros
        split_weight[s] = w;
        l += w * ph[s * stride + head_dim + 1];
    }
    l = block_reduce<false>(l);  // its barriers also publish split_weight
    float a[dims] = {};
#pragma unroll 8
    for (int s = warp; s < n_splits; s += n_warps) {
        const float w = split_weight[s];
        for (int k = 0; k < dims; ++k)
            if (lane + k * warp_size < head_dim) a[k] += ph[s * stride + lane + k * warp_size] * w;
    }
    for (int k = 0; k < dims; ++k) sums[warp][lane + k * warp_size] = a[k];
    __syncthreads();
    for (int d = tid; d < head_dim; d += threads) {
        float total = 0.f;
        for (int w = 0; w < n_warps; ++w) total += sums[w][d];
        out[static_cast<std::size_t>(pair) * head_dim + d] = total / l;
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

template <class T, int HD, bool reaches_far>
void launch_decode(float* out, float* partial, const float* q, const KvRows& cache, const int* positions, int n_tokens,
                   int n_head, int n_head_kv, int head_dim, float scale, int n_splits, cudaStream_t s) {
    const int chunks = (n_head / n_head_kv + decode_heads - 1) / decode_heads;
    const dim3 grid(static_cast<unsigned>(n_tokens * n_head_kv * chunks), static_cast<unsigned>(n_splits));
    attention_decode_kernel<T, HD, reaches_far><<<grid, decode_threads, 0, s>>>(
        out, partial, q, cache, positions, n_head, n_head_kv, head_dim, scale, n_splits);
}

template <class T, bool reaches_far>
void launch_decode(float* out, float* partial, const float* q, const KvRows& cache, const int* positions, int n_tokens,
                   int n_head, int n_head_kv, int head_dim, float scale, int n_splits, cudaStream_t s) {
    const auto launch = head_dim <= 64    ? launch_decode<T, 64, reaches_far>
                        : head_dim <= 128 ? launch_decode<T, 128, reaches_far>
                                          : launch_decode<T, 256, reaches_far>;
    launch(out, partial, q, cache, positions, n_tokens, n_head, n_head_kv, head_dim, scale, n_splits, s);
}

// How many blocks decode divides the keys among: enough splits for about decode_blocks blocks (each
// serving decode_heads of the `n_pairs` (token, query head) pairs), and no more than a power of two of
// the key tiles, so that the count stays the same from one step to the next but at a power of two (the
// blocks divide each token's tiles among themselves on the device).
int decode_splits(int n_pairs, int n_keys) {
    const int wanted = (decode_blocks * decode_heads + n_pairs - 1) / n_pairs;
    const int tiles = (n_keys + decode_keys - 1) / decode_keys;
    return std::max(1, std::min({wanted, max_splits, static_cast<int>(std::bit_ceil(static_cast<unsigned>(tiles)))}));
}

}  // namespace

std::size_t attention_scratch_bytes(int n_tokens, int n_head, int head_dim, int n_ctx) {
    if (n_tokens >= prompt_min_tokens) return 0;
    const int n_splits = decode_splits(n_tokens * n_head, n_ctx);
    if (n_splits == 1) return 0;
    return static_cast<std::size_t>(n_tokens) * n_head * n_splits * (head_dim + 2) * sizeof(float);
}

int attention_variant(int n_tokens, int n_head, int n_keys, const KvRows& cache) {
    return 2 * decode_splits(n_tokens * n_head, n_keys) + (n_keys > cache.near_rows ? 1 : 0);
}

bool attention_on_tensor_cores(KvType kv_type, int head_dim) {
    return kv_type == KvType::f16 && tensor_attention_supported(head_dim);
}

void attention(float* out, const float* q, const KvRows& cache, KvType kv_type, int n_tokens, const int* positions,
               int n_head, int n_head_kv, int head_dim, int n_keys, float* scratch, const Stream& stream) {
    if (n_tokens == 0) return;
    if (head_dim > max_head_dim || n_head % n_head_kv != 0)
        throw Error("attention: head_dim " + std::to_string(head_dim) + " with " + std::to_string(n_head) + "/" +
                    std::to_string(n_head_kv) +
                    " heads is not supported (head_dim <= 256, n_head a multiple of n_head_kv)");
    const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
    const bool f16 = kv_type == KvType::f16;
    if (n_tokens >= prompt_min_tokens) {
        if (n_keys > cache.near_rows)
            throw Error("attention: a prompt of " + std::to_string(n_tokens) + " tokens over " +
                        std::to_string(n_keys) + " keys of a cache with " + std::to_string(cache.near_rows) +
                        " rows in VRAM: stage the cache into VRAM first");
        const void *k_cache = cache.k, *v_cache = cache.v;
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
    const int n_splits = scratch ? decode_splits(n_pairs, n_keys) : 1;
    const bool far = n_keys > cache.near_rows;
    const auto launch = f16 ? (far ? launch_decode<unsigned short, true> : launch_decode<unsigned short, false>)
                            : (far ? launch_decode<float, true> : launch_decode<float, false>);
    launch(out, scratch, q, cache, positions, n_tokens, n_head, n_head_kv, head_dim, scale, n_splits, native(stream));
    GPU_CHECK_LAUNCH();
    if (n_splits > 1) {
        attention_merge_kernel<<<n_pairs, threads, 0, native(stream)>>>(out, scratch, head_dim, n_splits);
        GPU_CHECK_LAUNCH();
    }
}

}  // namespace runner::gpu
