// Prompt attention on NVIDIA tensor cores (sm_80 and later), flash-attention-2 style: a block takes
// 128 queries of one head, a warp 16 of them; per tile of 64 keys, scores S = Q K^T come out of
// 16x8x16 f16 products with f32 accumulation straight into registers, the online softmax runs on
// those registers (a row lives in the 4 lanes of a quad), and the probabilities are re-packed in
// registers as the A operand of O += P V, V read transposed by ldmatrix. Nothing n_tokens x n_ctx
// is ever stored; K and V tiles go through shared memory once per 128 queries, the next tile copied
// (cp.async) while the warps compute on this one. An earlier form, which copied each tile for 64 queries
// and then waited for it, reached 130 TFLOP/s on an H100 (13% of its tensor rate). Scores are kept in log2
// units (the scale folded into Q) so the exponentials are exp2. ROCm builds have no such kernel yet and
// use attention.cu's.
#include "runner/backend/gpu/attention_tensor.h"

#include <cmath>
#include <mutex>
#include <vector>

#include "runner/backend/gpu/check.h"

namespace runner::gpu {

#if defined(OAR_GPU_CUDA)

namespace {

constexpr int n_warps = 4;
// 16-row groups of queries a warp takes: each K and V fragment read from shared memory serves both, so a
// warp reads a tile once for 32 queries instead of 16 (flash-attention 2's layout for these head sizes).
constexpr int warp_groups = 2;
constexpr int warp_queries = 16 * warp_groups;
constexpr int block_queries = warp_queries * n_warps;
constexpr int block_keys = 64;

// Halves per shared row: 16-byte aligned, and 8 rows' fragments fall in distinct banks.
template <int D>
constexpr int row_stride = D + 8;

// The block's queries, then two stages of a K tile and a V tile.
template <int D>
constexpr std::size_t shared_bytes = (block_queries + 4 * block_keys) * row_stride<D> * sizeof(unsigned short);

// The kernel body's helpers, which only builds for sm_80 and later compile (mma, ldmatrix, cp.async).
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
__device__ inline unsigned pack_f16x2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const unsigned*>(&h);
}

// c += a * b for a 16x16 A (row major), a 16x8 B (column major), f32 accumulators.
__device__ inline void mma_16x8x16(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8x8 f16 matrices from shared memory; lane L gives the address of row L % 8 of matrix L / 8.
__device__ inline void load_x4(unsigned (&r)[4], const unsigned short* row) {
    const auto address = static_cast<unsigned>(__cvta_generic_to_shared(row));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}

// The same, each matrix transposed.
__device__ inline void load_transposed_x4(unsigned (&r)[4], const unsigned short* row) {
    const auto address = static_cast<unsigned>(__cvta_generic_to_shared(row));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}

// 16 bytes into shared memory without passing through registers, or zeros where `valid` is false: cache
// rows past the block's last position may hold anything, NaN included.
__device__ inline void copy_or_zero_16(unsigned short* to_shared, const unsigned short* from_global, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                     static_cast<unsigned>(__cvta_generic_to_shared(to_shared))),
                 "l"(from_global), "r"(valid ? 16 : 0)
                 : "memory");
}

// Keys k0 .. k0 + block_keys - 1 of one KV head into a stage (copies that the caller's copy_commit closes).
template <int D>
__device__ inline void copy_tile(unsigned short* ks, unsigned short* vs, const unsigned short* k_cache,
                                 const unsigned short* v_cache, int k0, int last_key, std::size_t kv_stride,
                                 int kv_head) {
    constexpr int chunks = D / 8;  // 16-byte pieces of a row
    for (int e = static_cast<int>(threadIdx.x); e < block_keys * chunks; e += n_warps * 32) {
        const int j = e / chunks, piece = e % chunks, key = k0 + j;
        const bool valid = key <= last_key;
        const std::size_t at = valid ? static_cast<std::size_t>(key) * kv_stride + kv_head * D + piece * 8 : 0;
        copy_or_zero_16(ks + j * row_stride<D> + piece * 8, k_cache + at, valid);
        copy_or_zero_16(vs + j * row_stride<D> + piece * 8, v_cache + at, valid);
    }
}
#endif

// Lane roles follow the mma fragment layout: g = lane / 4 is the row (and g + 8), c = lane % 4 the column pair.
template <int D>
__global__ void __launch_bounds__(n_warps * 32)
    attention_tensor_kernel(float* out, const float* q, const unsigned short* k_cache, const unsigned short* v_cache,
                            const int* positions, int n_tokens, int n_head, int n_head_kv, float scale_log2) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr int stride = row_stride<D>;
    constexpr int tile = block_keys * stride;
    extern __shared__ __align__(16) unsigned short shared[];  // the queries, then stage s: K at 2s tiles, V at 2s + 1
    __shared__ int block_last;  // the block's largest position: keys beyond it are masked for every query
    unsigned short* qs = shared;
    unsigned short* stages = shared + block_queries * stride;
    const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32, g = lane / 4, c = lane % 4;
    const int h = static_cast<int>(blockIdx.y);
    const int t0 = static_cast<int>(gridDim.x - 1 - blockIdx.x) * block_queries;  // latest queries (most keys) first
    const int kv_head = h / (n_head / n_head_kv);
    const std::size_t kv_stride = static_cast<std::size_t>(n_head_kv) * D;

    if (tid == 0) block_last = 0;
    for (int e = tid; e < block_queries * D / 4; e += blockDim.x) {
        const int i = e / (D / 4), d = e % (D / 4) * 4, t = t0 + i;
        float4 v = {0.f, 0.f, 0.f, 0.f};
        if (t < n_tokens) v = *reinterpret_cast<const float4*>(q + (static_cast<std::size_t>(t) * n_head + h) * D + d);
        *reinterpret_cast<uint2*>(qs + i * stride + d) =
            uint2{pack_f16x2(v.x * scale_log2, v.y * scale_log2), pack_f16x2(v.z * scale_log2, v.w * scale_log2)};
    }
    __syncthreads();
    if (tid < block_queries && t0 + tid < n_tokens) atomicMax(&block_last, positions[t0 + tid]);

    // Group r's rows are first_row + 16 r + g and + 8; the A fragments come from qs by ldmatrix, lane L
    // addressing row L % 16 at column (L / 16) * 8 of each 16x16 piece.
    const int first_row = warp * warp_queries;
    const auto token_of = [&](int r, int half) { return t0 + first_row + 16 * r + g + 8 * half; };
    int pos[warp_groups][2], warp_last = -1;
    for (int r = 0; r < warp_groups; ++r)
        for (int half = 0; half < 2; ++half) {
            const int t = token_of(r, half);
            pos[r][half] = t < n_tokens ? positions[t] : -1;
            warp_last = max(warp_last, pos[r][half]);
        }
    for (int offset = 16; offset > 0; offset /= 2)
        warp_last = max(warp_last, __shfl_xor_sync(0xffffffffu, warp_last, offset));
    __syncthreads();  // block_last is final
    const int last_key = block_last;
    copy_tile<D>(stages, stages + tile, k_cache, v_cache, 0, last_key, kv_stride, kv_head);
    copy_commit();

    float o[warp_groups][D / 8][4] = {};
    float m[warp_groups][2], l[warp_groups][2] = {};  // l: this lane's share of the row sums
    for (int r = 0; r < warp_groups; ++r) m[r][0] = m[r][1] = -INFINITY;
    for (int k0 = 0, stage = 0; k0 <= last_key; k0 += block_keys, stage ^= 1) {
        // The next tile into the other stage, whose last readers finished at the end of the previous tile.
        unsigned short* next = stages + (stage ^ 1) * 2 * tile;
        if (k0 + block_keys <= last_key)
            copy_tile<D>(next, next + tile, k_cache, v_cache, k0 + block_keys, last_key, kv_stride, kv_head);
        copy_commit();  // a group every tile, empty after the last, so that this tile's is the newest but one
        copy_wait<1>();
        __syncthreads();
        const unsigned short* ks = stages + stage * 2 * tile;
        const unsigned short* vs = ks + tile;
        if (warp_last >= k0) {  // else the whole tile is in the future of this warp's queries
            float s[warp_groups][block_keys / 8][4] = {};
            // Not unrolled: the registers hold o and s; every slice's fragments loaded up front would spill.
#pragma unroll 1
            for (int kk = 0; kk < D / 16; kk += 2) {
                unsigned a[warp_groups][2][4];
                for (int r = 0; r < warp_groups; ++r)
                    for (int k = 0; k < 2; ++k)
                        load_x4(a[r][k],
                                qs + (first_row + 16 * r + lane % 16) * stride + (kk + k) * 16 + lane / 16 * 8);
                for (int nt = 0; nt < block_keys / 8; ++nt) {
                    unsigned b[4];
                    load_x4(b, ks + (nt * 8 + lane % 8) * stride + kk * 16 + lane / 8 * 8);
                    for (int r = 0; r < warp_groups; ++r) {
                        mma_16x8x16(s[r][nt], a[r][0], b[0], b[1]);
                        mma_16x8x16(s[r][nt], a[r][1], b[2], b[3]);
                    }
                }
            }
            // P in registers: the accumulator layout of two adjacent 8-key tiles is the A layout of 16 keys.
            unsigned pf[warp_groups][block_keys / 16][4];
            // Unrolled, as the loops over o below: indexed by anything but constants, o and s leave the registers.
#pragma unroll
            for (int r = 0; r < warp_groups; ++r) {
                float tile_max[2] = {-INFINITY, -INFINITY};
                for (int nt = 0; nt < block_keys / 8; ++nt)
                    for (int i = 0; i < 4; ++i) {
                        const int key = k0 + nt * 8 + 2 * c + (i & 1);
                        if (key > pos[r][i / 2]) s[r][nt][i] = -INFINITY;
                        tile_max[i / 2] = fmaxf(tile_max[i / 2], s[r][nt][i]);
                    }
                float base[2];
                for (int half = 0; half < 2; ++half) {
                    const float m_new = fmaxf(m[r][half], quad_max(tile_max[half]));
                    base[half] = m_new == -INFINITY ? 0.f : m_new;  // a row with no key yet: keep 0s, not NaN
                    const float correction = exp2f(m[r][half] - base[half]);
                    m[r][half] = m_new;
                    l[r][half] *= correction;
                    for (int nd = 0; nd < D / 8; ++nd) {
                        o[r][nd][2 * half] *= correction;
                        o[r][nd][2 * half + 1] *= correction;
                    }
                }
                for (int nt = 0; nt < block_keys / 8; ++nt) {
                    float p[4];
                    for (int i = 0; i < 4; ++i) {
                        p[i] = exp2f(s[r][nt][i] - base[i / 2]);
                        l[r][i / 2] += p[i];
                    }
                    pf[r][nt / 2][(nt % 2) * 2] = pack_f16x2(p[0], p[1]);
                    pf[r][nt / 2][(nt % 2) * 2 + 1] = pack_f16x2(p[2], p[3]);
                }
            }
            const int matrix = lane / 8, matrix_row = lane % 8;
            for (int kt = 0; kt < block_keys / 16; ++kt)
                for (int nd = 0; nd < D / 8; nd += 2) {
                    unsigned b[4];
                    load_transposed_x4(b,
                                       vs + (kt * 16 + matrix_row + (matrix & 1) * 8) * stride + (nd + matrix / 2) * 8);
                    for (int r = 0; r < warp_groups; ++r) {
                        mma_16x8x16(o[r][nd], pf[r][kt], b[0], b[1]);
                        mma_16x8x16(o[r][nd + 1], pf[r][kt], b[2], b[3]);
                    }
                }
        }
        __syncthreads();  // this stage is read: the next tile's copies may refill it
    }
#pragma unroll
    for (int r = 0; r < warp_groups; ++r)
        for (int half = 0; half < 2; ++half) {
            const float sum = quad_sum(l[r][half]);
            const int t = token_of(r, half);
            if (t >= n_tokens) continue;
            float* oh = out + (static_cast<std::size_t>(t) * n_head + h) * D;
            for (int nd = 0; nd < D / 8; ++nd)
                *reinterpret_cast<float2*>(oh + nd * 8 + 2 * c) =
                    float2{o[r][nd][2 * half] / sum, o[r][nd][2 * half + 1] / sum};
        }
#endif
}

template <int D>
void launch(float* out, const float* q, const unsigned short* k_cache, const unsigned short* v_cache,
            const int* positions, int n_tokens, int n_head, int n_head_kv, float scale, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>((n_tokens + block_queries - 1) / block_queries),
                    static_cast<unsigned>(n_head));
    attention_tensor_kernel<D><<<grid, n_warps * 32, shared_bytes<D>, stream>>>(
        out, q, k_cache, v_cache, positions, n_tokens, n_head, n_head_kv, scale * 1.4426950408889634f);
}

// Lets the kernel for D take its two stages of shared memory, beyond the 48 KiB a launch gets unasked.
template <int D>
bool allow_shared_memory() {
    return cudaFuncSetAttribute(attention_tensor_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(shared_bytes<D>)) == cudaSuccess;
}

// Whether `device` (the current one) runs the kernel: sm_80 or later, from an image compiled for sm_80 or
// later too (a build whose only image is PTX for an older arch JIT-compiles the kernel with an empty body),
// with its shared memory allowed.
bool runs_kernel(int device) {
    int major = 0;
    cudaFuncAttributes attributes{};
    const bool runs = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess &&
                      major >= 8 && cudaFuncGetAttributes(&attributes, attention_tensor_kernel<64>) == cudaSuccess &&
                      attributes.ptxVersion >= 80 && allow_shared_memory<64>() && allow_shared_memory<128>();
    (void)cudaGetLastError();
    return runs;
}

}  // namespace

bool tensor_attention_supported(int head_dim) {
    if (head_dim != 64 && head_dim != 128) return false;
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    // Asked on every prompt layer: each device's answer is looked up once, for the image loaded for it.
    static std::mutex mutex;
    static std::vector<signed char> known;  // per device: -1 until asked
    const std::lock_guard lock(mutex);
    const auto at = static_cast<std::size_t>(device);
    if (known.size() <= at) known.resize(at + 1, -1);
    if (known[at] < 0) known[at] = runs_kernel(device) ? 1 : 0;
    return known[at] == 1;
}

void attention_prompt_tensor(float* out, const float* q, const unsigned short* k_cache, const unsigned short* v_cache,
                             const int* positions, int n_tokens, int n_head, int n_head_kv, int head_dim, float scale,
                             cudaStream_t stream) {
    if (head_dim == 64)
        launch<64>(out, q, k_cache, v_cache, positions, n_tokens, n_head, n_head_kv, scale, stream);
    else
        launch<128>(out, q, k_cache, v_cache, positions, n_tokens, n_head, n_head_kv, scale, stream);
}

#else

bool tensor_attention_supported(int) { return false; }

void attention_prompt_tensor(float*, const float*, const unsigned short*, const unsigned short*, const int*, int, int,
                             int, int, float, cudaStream_t) {
    throw Error("attention_prompt_tensor: no tensor-core attention in this build");
}

#endif

}  // namespace runner::gpu
