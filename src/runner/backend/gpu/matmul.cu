// out[t, j] = sum_i w[j, i] * x[t, i] (+ bias[j]), and the fused forms a transformer layer wants: the
// product added to the residual (matmul_add), products of an RMS-normalized input (norm_matmul: q, k
// and v in one launch) and SwiGLU's gate and up products with the gate applied (norm_matmul_swiglu).
// Decode is bound by reading the weights and by the launches between them, so fusing saves a launch
// and a pass over an activation each time. Three kernels: for a few tokens (decode) a block per output
// row reads the weights once with 16-byte loads and serves every token from registers, in f32 for 16-bit
// and f32 weights and through int8 activations for quantized ones (matvec_int8.cu); for a prompt a
// shared-memory tiled product reuses each loaded weight across 64 tokens (the BLAS, where there is one,
// first), after a separate normalization.

#include <algorithm>

#include "runner/backend/gpu/blas.h"
#include "runner/backend/gpu/matvec.h"

namespace runner::gpu {

namespace {

// A block per output row, its threads across the row: many short blocks keep the memory system
// streaming (as the output head's 128K rows do), where a warp per row ran as one wave of long
// warps whose start and finish left the bus idle, and reached 40-60% of HBM on 1K-6K rows.
constexpr int matvec_threads = 128;
// Chunks of 8 weights a thread loads before it uses any: with one in flight each waits a whole memory
// latency per 16 bytes and decode reaches under half of HBM's bandwidth.
constexpr int matvec_loads = 4;

// 8 consecutive weights of a row as loaded: 16 bytes of 16-bit weights, 32 of f32.
struct Chunk {
    uint4 lo{}, hi{};
};

// `at` is the flat index of the first weight, a multiple of 8.
template <WeightType type>
__device__ inline Chunk load_chunk(const void* w, std::size_t at) {
    Chunk c;
    if constexpr (type == WeightType::f32) {
        c.lo = *reinterpret_cast<const uint4*>(static_cast<const float*>(w) + at);
        c.hi = *reinterpret_cast<const uint4*>(static_cast<const float*>(w) + at + 4);
    } else {
        c.lo = *reinterpret_cast<const uint4*>(static_cast<const unsigned short*>(w) + at);
    }
    return c;
}

// The chunk's 8 weights as f32.
template <WeightType type>
__device__ inline void widen(const Chunk& c, float* out) {
    const unsigned words[8] = {c.lo.x, c.lo.y, c.lo.z, c.lo.w, c.hi.x, c.hi.y, c.hi.z, c.hi.w};
    for (int k = 0; k < 8; ++k) {
        if constexpr (type == WeightType::f32) {
            out[k] = __uint_as_float(words[k]);
        } else {
            const auto half = static_cast<unsigned short>((words[k / 2] >> (16 * (k % 2))) & 0xffffu);
            out[k] = type == WeightType::bf16 ? bf16_to_f32(half) : f16_to_f32(half);
        }
    }
}

// 8 consecutive norm weights from i on, widened.
__device__ inline void load_norm8(const Norm& norm, int i, float* out) {
    switch (norm.type) {
        case WeightType::bf16: return widen<WeightType::bf16>(load_chunk<WeightType::bf16>(norm.weight, i), out);
        case WeightType::f16: return widen<WeightType::f16>(load_chunk<WeightType::f16>(norm.weight, i), out);
        default: return widen<WeightType::f32>(load_chunk<WeightType::f32>(norm.weight, i), out);
    }
}

// A block per output row, rows numbered across the parts; n_tokens <= max_tokens and d_in % 8 == 0.
// Each weight is read once and serves every token from registers, so the kernel is bound by memory
// bandwidth; the warps' partial sums are added in a fixed order. With a norm, the threads also sum the
// squares of the inputs they read anyway and multiply them by the norm's weights: the normalization
// costs no pass of its own. `gated` (SwiGLU): the block reads the same row of w_up as well and writes
// silu(gate) * up, so the two products share the activations and neither is written.
template <WeightType type, int max_tokens, bool gated>
__global__ void matvec_kernel(const MatvecArgs a) {
    constexpr int n_warps = matvec_threads / warp_size, n_sums = gated ? 3 : 2;
    __shared__ float partial[n_warps][max_tokens][n_sums];
    int j = static_cast<int>(blockIdx.x);
    const Product part = block_part(a, j);
    const int tid = static_cast<int>(threadIdx.x), warp = tid / warp_size, lane = tid % warp_size;
    const int d_in = a.d_in, n_tokens = a.n_tokens;
    const bool normed = a.norm.weight != nullptr;
    float acc[max_tokens] = {}, acc_up[max_tokens] = {}, squares[max_tokens] = {};
    const std::size_t first = static_cast<std::size_t>(j) * d_in;
    constexpr int stride = matvec_threads * 8;
    let_next_kernel_start();
    for (int i0 = tid * 8; i0 < d_in; i0 += stride * matvec_loads) {
        // Unrolled so that c and u stay in registers: at 8 tokens nvcc left these loops rolled and kept them in a
        // 128-256 byte local frame, as it did in matvec_int8_kernel at 4 and 8 tokens.
        Chunk c[matvec_loads], u[gated ? matvec_loads : 1];
#pragma unroll
        for (int k = 0; k < matvec_loads; ++k) {
            const int i = i0 + k * stride;
            if (i >= d_in) continue;
            c[k] = load_chunk<type>(part.w, first + i);
            if constexpr (gated) u[k] = load_chunk<type>(a.w_up, first + i);
        }
        // The first weights are on their way before the input is ready (launch_overlapped).
        wait_for_previous_kernel();
#pragma unroll
        for (int k = 0; k < matvec_loads; ++k) {
            const int i = i0 + k * stride;
            if (i >= d_in) continue;
            float wv[8], uv[8], g[8];
            widen<type>(c[k], wv);
            if constexpr (gated) widen<type>(u[k], uv);
            if (normed) load_norm8(a.norm, i, g);
            for (int t = 0; t < max_tokens; ++t) {
                if (t >= n_tokens) continue;
                const float* xt = a.x + static_cast<std::size_t>(t) * d_in + i;
                const float4 lo = *reinterpret_cast<const float4*>(xt), hi = *reinterpret_cast<const float4*>(xt + 4);
                float xv[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
                if (normed)
                    for (int e = 0; e < 8; ++e) squares[t] += xv[e] * xv[e], xv[e] *= g[e];
                for (int e = 0; e < 8; ++e) {
                    acc[t] += wv[e] * xv[e];
                    if constexpr (gated) acc_up[t] += uv[e] * xv[e];
                }
            }
        }
    }
    wait_for_previous_kernel();  // a thread past the row's end
    for (int t = 0; t < max_tokens; ++t) {
        if (t >= n_tokens) continue;
        const float sums[3] = {warp_sum(acc[t]), warp_sum(squares[t]), gated ? warp_sum(acc_up[t]) : 0.f};
        if (lane == 0)
            for (int k = 0; k < n_sums; ++k) partial[warp][t][k] = sums[k];
    }
    __syncthreads();
    if (tid >= n_tokens) return;
    const int t = tid;
    float sum = 0.f, sum_squares = 0.f, sum_up = 0.f;
    for (int w = 0; w < n_warps; ++w) {
        sum += partial[w][t][0], sum_squares += partial[w][t][1];
        if constexpr (gated) sum_up += partial[w][t][2];
    }
    const float scale = normed ? rsqrtf(sum_squares / static_cast<float>(d_in) + a.norm.eps) : 1.f;
    store_row<gated>(a, part, t, j, sum * scale, sum_up * scale);
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
void launch_matvec(const MatvecArgs& a, cudaStream_t s) {
    int total = 0;
    for (int p = 0; p < a.n_parts; ++p) total += a.parts[p].d_out;
    const auto grid = static_cast<unsigned>(total);
    const auto kernel = a.n_tokens == 1   ? matvec_kernel<type, 1, gated>
                        : a.n_tokens == 2 ? matvec_kernel<type, 2, gated>
                        : a.n_tokens <= 4 ? matvec_kernel<type, 4, gated>
                                          : matvec_kernel<type, matvec_max_tokens, gated>;
    launch_overlapped(kernel, grid, matvec_threads, s, a);
}

bool f32_matvec(WeightType type) {
    return type == WeightType::f32 || type == WeightType::f16 || type == WeightType::bf16;
}

// Decode's launch for one set of products of one weight type: in f32 for 16-bit and f32 weights, else
// through int8 activations, which the caller has quantized into a.scratch when `quantized` says so.
template <bool gated>
void launch_matvec(const MatvecArgs& a, bool quantized, cudaStream_t s) {
    switch (a.parts[0].type) {
        case WeightType::f32: return launch_matvec<WeightType::f32, gated>(a, s);
        case WeightType::f16: return launch_matvec<WeightType::f16, gated>(a, s);
        case WeightType::bf16: return launch_matvec<WeightType::bf16, gated>(a, s);
        default:
            if (!quantized) quantize_input(a, s);
            return matvec_int8(a, s);
    }
}

bool int8_on = true;  // changed only by tests, before any product runs

// Quantized weights whose product decode's int8 kernel takes: a few tokens in whole blocks of 32 activations
// (256 for the K-quants, whose rows are whole super-blocks anyway).
bool int8_matvec(WeightType type, int n_tokens, int d_in) {
    return int8_on && !f32_matvec(type) && n_tokens <= matvec_max_tokens && d_in % (is_kquant(type) ? 256 : 32) == 0;
}

// Whether decode's kernels take the product: a few tokens, and for quantized weights a scratch to hold
// their int8 activations.
bool on_matvec(WeightType type, int n_tokens, int d_in, const float* scratch) {
    if (n_tokens > matvec_max_tokens || d_in % 8 != 0) return false;
    return f32_matvec(type) || (scratch != nullptr && int8_matvec(type, n_tokens, d_in));
}

// `quantized`: the scratch already holds x's int8 activations.
void product(const Product& p, const float* x, float* scratch, int n_tokens, int d_in, bool accumulate,
             const Stream& stream, const Blas* blas, bool quantized = false) {
    if (quantized && !(scratch && int8_matvec(p.type, n_tokens, d_in)))
        throw Error("matmul: int8 activations given for a product that does not take them");
    if (blas && n_tokens >= blas_min_tokens &&
        blas_matmul(p.out, x, p.w, p.type, p.bias, p.bias_type, n_tokens, d_in, p.d_out, accumulate, stream, *blas))
        return;
    const cudaStream_t s = native(stream);
    if (on_matvec(p.type, n_tokens, d_in, scratch)) {
        MatvecArgs a;
        a.x = x, a.n_tokens = n_tokens, a.d_in = d_in, a.parts[0] = p, a.n_parts = 1, a.accumulate = accumulate;
        a.scratch = scratch;
        launch_matvec<false>(a, quantized, s);
    } else {
        const dim3 grid(static_cast<unsigned>((p.d_out + tile - 1) / tile),
                        static_cast<unsigned>((n_tokens + tile - 1) / tile));
        gemm_kernel<<<grid, 256, 0, s>>>(p.out, x, p.w, p.type, p.bias, p.bias_type, n_tokens, d_in, p.d_out,
                                         accumulate);
    }
    GPU_CHECK_LAUNCH();
}

}  // namespace

void use_int8_activations(bool on) { int8_on = on; }

bool takes_int8_input(WeightType type, int n_tokens, int d_in) { return int8_matvec(type, n_tokens, d_in); }

void matmul(float* out, const float* x, const void* w, WeightType type, const void* bias, WeightType bias_type,
            float* scratch, int n_tokens, int d_in, int d_out, const Stream& stream, const Blas* blas) {
    if (n_tokens == 0) return;
    product(Product{out, w, type, d_out, bias, bias_type}, x, scratch, n_tokens, d_in, false, stream, blas);
}

void matmul_add(float* x, const float* in, const void* w, WeightType type, float* scratch, int n_tokens, int d_in,
                int d_out, const Stream& stream, const Blas* blas, bool quantized) {
    if (n_tokens == 0) return;
    product(Product{x, w, type, d_out}, in, scratch, n_tokens, d_in, true, stream, blas, quantized);
}

void norm_matmul(std::span<const Product> products, const float* x, const Norm& norm, float* scratch, int n_tokens,
                 int d_in, const Stream& stream, const Blas* blas) {
    if (n_tokens == 0 || products.empty()) return;
    const bool decode = products.size() <= 3 && std::all_of(products.begin(), products.end(), [&](const Product& p) {
                            return on_matvec(p.type, n_tokens, d_in, scratch);
                        });
    if (decode) {
        // A launch per weight format, or per two where int8_pair allows (a Q4_K_M layer's v is Q6_K beside
        // Q4_K's q and k), each normalizing the input as it reads it or sharing one normalized quantization of
        // it: no pass of its own for the norm either way.
        bool launched[3] = {}, quantized = false;
        for (std::size_t first = 0; first < products.size(); ++first) {
            if (launched[first]) continue;
            MatvecArgs a;
            a.x = x, a.n_tokens = n_tokens, a.d_in = d_in, a.norm = norm, a.scratch = scratch;
            const WeightType type = products[first].type;
            WeightType other = type;
            for (std::size_t i = first; i < products.size(); ++i) {
                if (launched[i]) continue;
                const WeightType t = products[i].type;
                if (t != type && other == type && int8_pair(type, t)) other = t;
                if (t == type || t == other) a.parts[a.n_parts++] = products[i], launched[i] = true;
            }
            launch_matvec<false>(a, quantized, native(stream));
            GPU_CHECK_LAUNCH();
            quantized = quantized || !f32_matvec(a.parts[0].type);
        }
        return;
    }
    if (blas && n_tokens >= blas_min_tokens && blas_norm_matmul(products, x, norm, n_tokens, d_in, stream, *blas))
        return;
    rmsnorm(scratch, x, norm.weight, norm.type, n_tokens, d_in, norm.eps, stream);
    for (const auto& p : products) product(p, scratch, nullptr, n_tokens, d_in, false, stream, blas);
}

void norm_matmul_swiglu(float* out, float* up, float* scratch, const float* x, const Norm& norm, const void* w_gate,
                        const void* w_up, WeightType type, int n_tokens, int d_in, int d_out, const Stream& stream,
                        const Blas* blas) {
    if (n_tokens == 0) return;
    if (on_matvec(type, n_tokens, d_in, scratch)) {
        MatvecArgs a;
        a.x = x, a.n_tokens = n_tokens, a.d_in = d_in, a.norm = norm, a.w_up = w_up, a.scratch = scratch;
        a.parts[0] = Product{out, w_gate, type, d_out}, a.n_parts = 1;
        launch_matvec<true>(a, false, native(stream));
        GPU_CHECK_LAUNCH();
        return;
    }
    const Product gate_up[] = {{out, w_gate, type, d_out}, {up, w_up, type, d_out}};
    norm_matmul(gate_up, x, norm, scratch, n_tokens, d_in, stream, blas);
    swiglu(out, up, static_cast<std::size_t>(n_tokens) * d_out, stream);
}

void norm_mlp(float* x, const Norm& norm, std::span<const MlpBlock> blocks, WeightType gate_up_type,
              WeightType down_type, float* gate, float* up, float* scratch, int n_tokens, int d_in,
              const Stream& stream, const Blas* blas) {
    if (n_tokens == 0) return;
    if (blas && n_tokens >= blas_min_tokens &&
        blas_norm_mlp(x, norm, blocks, gate_up_type, down_type, gate, up, n_tokens, d_in, stream, *blas))
        return;
    std::size_t offset = 0;
    for (const auto& b : blocks) {
        norm_matmul_swiglu(gate + offset, up + offset, scratch, x, norm, b.gate, b.up, gate_up_type, n_tokens, d_in,
                           b.rows, stream, blas);
        offset += static_cast<std::size_t>(n_tokens) * b.rows;
    }
    // down's int8 input goes to `up`, which the gate and up products no longer need
    offset = 0;
    for (const auto& b : blocks) {
        matmul_add(x, gate + offset, b.down, down_type, up, n_tokens, b.rows, d_in, stream, blas);
        offset += static_cast<std::size_t>(n_tokens) * b.rows;
    }
}

}  // namespace runner::gpu
