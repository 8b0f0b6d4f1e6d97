// out[t, j] = sum_i w[j, i] * x[t, i] (+ bias[j]), and the two fused forms decode wants: the product
// added to the residual (matmul_add) and SwiGLU's gate and up products with the gate applied
// (matmul_swiglu), which save a kernel launch and a pass over an activation each. Two kernels: for a
// few tokens (decode) a warp per output row reads the weights once with 16-byte loads and serves
// every token from registers, which keeps it bound by memory bandwidth; for a prompt a shared-memory
// tiled product reuses each loaded weight across 64 tokens (the BLAS, where there is one, first).
#include "runner/backend/gpu/blas.h"
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

constexpr int matvec_max_tokens = 8;
constexpr int matvec_warps = 4;
// Chunks of 8 weights a lane loads before it uses any: with one in flight a warp waits a whole memory
// latency per 512 bytes and decode reaches under half of HBM's bandwidth.
constexpr int matvec_loads = 4;

// 8 consecutive weights of a row as loaded: 16 bytes of 16-bit weights, 8 of q8 or 4 of q4 (in `lo`,
// with their block's scale), 32 of f32.
struct Chunk {
    uint4 lo{}, hi{};
    float scale = 0.f;
};

// `at` is the flat index of the first weight, a multiple of 8, so the 8 share one scale block.
template <WeightType type>
__device__ inline Chunk load_chunk(const void* w, std::size_t at, const float* scales) {
    Chunk c;
    if constexpr (type == WeightType::f32) {
        c.lo = *reinterpret_cast<const uint4*>(static_cast<const float*>(w) + at);
        c.hi = *reinterpret_cast<const uint4*>(static_cast<const float*>(w) + at + 4);
    } else if constexpr (type == WeightType::q8) {
        const uint2 raw = *reinterpret_cast<const uint2*>(static_cast<const signed char*>(w) + at);
        c.lo.x = raw.x, c.lo.y = raw.y;
        c.scale = scales[at / quant_block];
    } else if constexpr (type == WeightType::q4) {
        c.lo.x = *reinterpret_cast<const unsigned*>(static_cast<const unsigned char*>(w) + at / 2);
        c.scale = scales[at / quant_block];
    } else {
        c.lo = *reinterpret_cast<const uint4*>(static_cast<const unsigned short*>(w) + at);
    }
    return c;
}

template <WeightType type>
__device__ inline void widen(const Chunk& c, float* out) {
    const unsigned words[8] = {c.lo.x, c.lo.y, c.lo.z, c.lo.w, c.hi.x, c.hi.y, c.hi.z, c.hi.w};
    for (int k = 0; k < 8; ++k) {
        if constexpr (type == WeightType::f32) {
            out[k] = __uint_as_float(words[k]);
        } else if constexpr (type == WeightType::q8) {
            out[k] = static_cast<float>(static_cast<signed char>((words[k / 4] >> (8 * (k % 4))) & 0xffu)) * c.scale;
        } else if constexpr (type == WeightType::q4) {
            out[k] = static_cast<float>(static_cast<int>((words[0] >> (4 * k)) & 0xfu) - 8) * c.scale;
        } else {
            const auto half = static_cast<unsigned short>((words[k / 2] >> (16 * (k % 2))) & 0xffffu);
            out[k] = type == WeightType::bf16 ? bf16_to_f32(half) : f16_to_f32(half);
        }
    }
}

__device__ inline float dot8(const float* w, const float* x) {
    const float4 a = *reinterpret_cast<const float4*>(x);
    const float4 b = *reinterpret_cast<const float4*>(x + 4);
    return w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y + w[6] * b.z + w[7] * b.w;
}

// One warp per output row j, for n_tokens <= max_tokens; d_in % 8 == 0 (checked by the caller). Each
// weight is read once and serves every token from registers, so the kernel is bound by memory
// bandwidth. `gated` (SwiGLU): the warp reads row j of w_up as well and writes silu(gate) * up, so the
// two products share the activations and neither is written out. `accumulate`: out += the product
// (a residual add without a kernel of its own).
template <WeightType type, int max_tokens, bool gated>
__global__ void matvec_kernel(float* out, const float* x, const void* w, const void* w_up, const void* bias,
                              WeightType bias_type, int n_tokens, int d_in, int d_out, bool accumulate) {
    const int j = blockIdx.x * matvec_warps + threadIdx.x / warp_size;
    const int lane = threadIdx.x % warp_size;
    if (j >= d_out) return;
    const auto rows = static_cast<std::size_t>(d_out), cols = static_cast<std::size_t>(d_in);
    const float* scales = quant_scales(w, type, rows, cols);
    const float* up_scales = gated ? quant_scales(w_up, type, rows, cols) : nullptr;
    float acc[max_tokens] = {}, acc_up[max_tokens] = {};
    const std::size_t row = static_cast<std::size_t>(j) * d_in;
    constexpr int stride = warp_size * 8;
    for (int i0 = lane * 8; i0 < d_in; i0 += stride * matvec_loads) {
        Chunk c[matvec_loads], u[gated ? matvec_loads : 1];
        for (int k = 0; k < matvec_loads; ++k) {
            const int i = i0 + k * stride;
            if (i < d_in) {
                c[k] = load_chunk<type>(w, row + i, scales);
                if constexpr (gated) u[k] = load_chunk<type>(w_up, row + i, up_scales);
            }
        }
        for (int k = 0; k < matvec_loads; ++k) {
            const int i = i0 + k * stride;
            if (i >= d_in) continue;
            float wv[8], uv[8];
            widen<type>(c[k], wv);
            if constexpr (gated) widen<type>(u[k], uv);
            for (int t = 0; t < max_tokens; ++t) {
                if (t >= n_tokens) continue;
                const float* xt = x + static_cast<std::size_t>(t) * d_in + i;
                acc[t] += dot8(wv, xt);
                if constexpr (gated) acc_up[t] += dot8(uv, xt);
            }
        }
    }
    const float b = bias ? load_weight(bias, bias_type, j) : 0.f;
    for (int t = 0; t < max_tokens; ++t) {
        if (t >= n_tokens) continue;
        const float sum = warp_sum(acc[t]) + b;
        float result = sum;
        if constexpr (gated) result = sum / (1.f + expf(-sum)) * warp_sum(acc_up[t]);
        if (lane != 0) continue;
        float& o = out[static_cast<std::size_t>(t) * d_out + j];
        o = accumulate ? o + result : result;
    }
}

constexpr int tile = 64, tile_k = 16;

// 256 threads compute a 64 (tokens) x 64 (outputs) tile, 4x4 each, over k in steps of 16.
__global__ void gemm_kernel(float* out, const float* x, const void* w, WeightType type, const void* bias,
                            WeightType bias_type, int n_tokens, int d_in, int d_out, bool accumulate) {
    __shared__ float xs[tile_k][tile + 4];
    __shared__ float ws[tile_k][tile + 4];
    const int t0 = blockIdx.y * tile, j0 = blockIdx.x * tile;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const float* scales = quant_scales(w, type, static_cast<std::size_t>(d_out), static_cast<std::size_t>(d_in));
    float acc[4][4] = {};
    for (int k0 = 0; k0 < d_in; k0 += tile_k) {
        // Each thread loads 4 of the 64x16 elements of each tile.
        for (int e = threadIdx.x; e < tile * tile_k; e += blockDim.x) {
            const int r = e / tile_k, k = e % tile_k;
            const int t = t0 + r, j = j0 + r, kk = k0 + k;
            xs[k][r] = (t < n_tokens && kk < d_in) ? x[static_cast<std::size_t>(t) * d_in + kk] : 0.f;
            ws[k][r] = (j < d_out && kk < d_in)
                           ? weight_at(w, type, static_cast<std::size_t>(j), static_cast<std::size_t>(kk),
                                       static_cast<std::size_t>(d_in), scales)
                           : 0.f;
        }
        __syncthreads();
        for (int k = 0; k < tile_k; ++k) {
            float a[4], b[4];
            for (int m = 0; m < 4; ++m) a[m] = xs[k][ty * 4 + m];
            for (int n = 0; n < 4; ++n) b[n] = ws[k][tx * 4 + n];
            for (int m = 0; m < 4; ++m)
                for (int n = 0; n < 4; ++n) acc[m][n] += a[m] * b[n];
        }
        __syncthreads();
    }
    for (int m = 0; m < 4; ++m) {
        const int t = t0 + ty * 4 + m;
        if (t >= n_tokens) continue;
        for (int n = 0; n < 4; ++n) {
            const int j = j0 + tx * 4 + n;
            if (j >= d_out) continue;
            float& o = out[static_cast<std::size_t>(t) * d_out + j];
            const float result = acc[m][n] + (bias ? load_weight(bias, bias_type, j) : 0.f);
            o = accumulate ? o + result : result;
        }
    }
}

template <WeightType type, bool gated>
void launch_matvec(float* out, const float* x, const void* w, const void* w_up, const void* bias, WeightType bias_type,
                   int n_tokens, int d_in, int d_out, bool accumulate, cudaStream_t s) {
    const unsigned blocks = static_cast<unsigned>((d_out + matvec_warps - 1) / matvec_warps);
    const auto kernel = n_tokens == 1   ? matvec_kernel<type, 1, gated>
                        : n_tokens == 2 ? matvec_kernel<type, 2, gated>
                        : n_tokens <= 4 ? matvec_kernel<type, 4, gated>
                                        : matvec_kernel<type, matvec_max_tokens, gated>;
    kernel<<<blocks, matvec_warps * warp_size, 0, s>>>(out, x, w, w_up, bias, bias_type, n_tokens, d_in, d_out,
                                                      accumulate);
}

template <bool gated>
void launch_matvec(float* out, const float* x, const void* w, const void* w_up, WeightType type, const void* bias,
                   WeightType bias_type, int n_tokens, int d_in, int d_out, bool accumulate, cudaStream_t s) {
    switch (type) {
        case WeightType::f32:
            return launch_matvec<WeightType::f32, gated>(out, x, w, w_up, bias, bias_type, n_tokens, d_in, d_out,
                                                         accumulate, s);
        case WeightType::f16:
            return launch_matvec<WeightType::f16, gated>(out, x, w, w_up, bias, bias_type, n_tokens, d_in, d_out,
                                                         accumulate, s);
        case WeightType::bf16:
            return launch_matvec<WeightType::bf16, gated>(out, x, w, w_up, bias, bias_type, n_tokens, d_in, d_out,
                                                          accumulate, s);
        case WeightType::q8:
            return launch_matvec<WeightType::q8, gated>(out, x, w, w_up, bias, bias_type, n_tokens, d_in, d_out,
                                                        accumulate, s);
        case WeightType::q4:
            return launch_matvec<WeightType::q4, gated>(out, x, w, w_up, bias, bias_type, n_tokens, d_in, d_out,
                                                        accumulate, s);
    }
}

bool on_matvec(int n_tokens, int d_in) { return n_tokens <= matvec_max_tokens && d_in % 8 == 0; }

void product(float* out, const float* x, const void* w, WeightType type, const void* bias, WeightType bias_type,
             int n_tokens, int d_in, int d_out, bool accumulate, const Stream& stream, const Blas* blas) {
    if (n_tokens == 0) return;
    if (blas && n_tokens >= blas_min_tokens &&
        blas_matmul(out, x, w, type, bias, bias_type, n_tokens, d_in, d_out, accumulate, stream, *blas))
        return;
    const cudaStream_t s = native(stream);
    if (on_matvec(n_tokens, d_in)) {
        launch_matvec<false>(out, x, w, nullptr, type, bias, bias_type, n_tokens, d_in, d_out, accumulate, s);
    } else {
        const dim3 grid(static_cast<unsigned>((d_out + tile - 1) / tile),
                        static_cast<unsigned>((n_tokens + tile - 1) / tile));
        gemm_kernel<<<grid, 256, 0, s>>>(out, x, w, type, bias, bias_type, n_tokens, d_in, d_out, accumulate);
    }
    GPU_CHECK_LAUNCH();
}

}  // namespace

void matmul(float* out, const float* x, const void* w, WeightType type, const void* bias, WeightType bias_type,
            int n_tokens, int d_in, int d_out, const Stream& stream, const Blas* blas) {
    product(out, x, w, type, bias, bias_type, n_tokens, d_in, d_out, false, stream, blas);
}

void matmul_add(float* x, const float* in, const void* w, WeightType type, int n_tokens, int d_in, int d_out,
                const Stream& stream, const Blas* blas) {
    product(x, in, w, type, nullptr, WeightType::f32, n_tokens, d_in, d_out, true, stream, blas);
}

void matmul_swiglu(float* out, float* up, const float* x, const void* w_gate, const void* w_up, WeightType type,
                   int n_tokens, int d_in, int d_out, const Stream& stream, const Blas* blas) {
    if (n_tokens == 0) return;
    if (on_matvec(n_tokens, d_in)) {
        launch_matvec<true>(out, x, w_gate, w_up, type, nullptr, WeightType::f32, n_tokens, d_in, d_out, false,
                            native(stream));
        GPU_CHECK_LAUNCH();
        return;
    }
    matmul(out, x, w_gate, type, nullptr, WeightType::f32, n_tokens, d_in, d_out, stream, blas);
    matmul(up, x, w_up, type, nullptr, WeightType::f32, n_tokens, d_in, d_out, stream, blas);
    swiglu(out, up, static_cast<std::size_t>(n_tokens) * d_out, stream);
}

}  // namespace runner::gpu
