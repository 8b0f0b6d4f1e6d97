// out[t, j] = sum_i w[j, i] * x[t, i] (+ bias[j]), and the fused forms a transformer layer wants: the
// product added to the residual (matmul_add), products of an RMS-normalized input (norm_matmul: q, k
// and v in one launch) and SwiGLU's gate and up products with the gate applied (norm_matmul_swiglu).
// Decode is bound by reading the weights and by the launches between them, so fusing saves a launch
// and a pass over an activation each time. Two kernels: for a few tokens (decode) a block per output
// row reads the weights once with 16-byte loads and serves every token from registers; for a prompt a
// shared-memory tiled product reuses each loaded weight across 64 tokens (the BLAS, where there is
// one, first), after a separate normalization.

#include "runner/backend/gpu/blas.h"
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

constexpr int matvec_max_tokens = 8;
// A block per output row, its threads across the row: many short blocks keep the memory system
// streaming (as the output head's 128K rows do), where a warp per row ran as one wave of long
// warps whose start and finish left the bus idle, and reached 40-60% of HBM on 1K-6K rows.
constexpr int matvec_threads = 128;
// Chunks of 8 weights a thread loads before it uses any: with one in flight each waits a whole memory
// latency per 16 bytes and decode reaches under half of HBM's bandwidth.
constexpr int matvec_loads = 4;
// K-quant pieces (16 weights, 8 bytes of quants) a thread loads before it uses any: all of a 4096-wide
// row's at 128 threads, 4 of each 8 of down's 14,336.
constexpr int kquant_loads = 4;

// 8 consecutive weights of a row as loaded: 16 bytes of 16-bit weights, 8 of q8 or 4 of q4 (in `lo`,
// with their block's scale), 32 of f32. GGUF's Q8_0 and Q4_0 arrive in the same forms (8 signed bytes; 8
// nibbles stored + 8, like q4); the K-quants are read in pieces of 16 instead (ggml_blocks.h).
struct Chunk {
    uint4 lo{}, hi{};
    float scale = 0.f;
};

// The chunk of ggml blocks at flat index `at`, in the matrix-vector kernel's form.
template <WeightType type>
__device__ inline Chunk load_ggml_chunk(const void* w, std::size_t at) {
    const GgmlChunk g = ggml_chunk(type, w, at);
    Chunk c;
    c.lo.x = g.words[0], c.lo.y = g.words[1];
    c.scale = g.scale;
    return c;
}

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
    } else if constexpr (is_ggml_block(type)) {
        c = load_ggml_chunk<type>(w, at);
    } else {
        c.lo = *reinterpret_cast<const uint4*>(static_cast<const unsigned short*>(w) + at);
    }
    return c;
}

template <WeightType type>
constexpr bool quantized = type == WeightType::q8 || type == WeightType::q4 || is_ggml_block(type);
// Q4_K's and Q5_K's weights subtract a minimum: the chunk's sum then subtracts min times the inputs' sum.
template <WeightType type>
constexpr bool has_min = type == WeightType::q4_k || type == WeightType::q5_k;

// The chunk's 8 weights as f32; quantized ones not yet scaled (the caller scales the chunk's sum once).
// A quant widens without an integer-to-float conversion, which NVIDIA GPUs run at a quarter of the f32
// rate (it held 8- and 4-bit decode below BF16's): placed in the low mantissa bits of 2^23 it is the
// float 2^23 + quant + offset, and one subtraction leaves the quant exactly.
template <WeightType type>
__device__ inline void widen(const Chunk& c, float* out) {
    const unsigned words[8] = {c.lo.x, c.lo.y, c.lo.z, c.lo.w, c.hi.x, c.hi.y, c.hi.z, c.hi.w};
    constexpr unsigned two_23 = 0x4b000000u;  // 2^23's bits
    for (int k = 0; k < 8; ++k) {
        if constexpr (type == WeightType::f32) {
            out[k] = __uint_as_float(words[k]);
        } else if constexpr (type == WeightType::q8 || type == WeightType::q8_0) {
            // int8 + 128 (its sign bit flipped) is 0..255
            const unsigned biased = ((words[k / 4] ^ 0x80808080u) >> (8 * (k % 4))) & 0xffu;
            out[k] = __uint_as_float(two_23 | biased) - 8388736.f;  // 2^23 + 128
        } else if constexpr (type == WeightType::q4 || type == WeightType::q4_0) {
            out[k] =
                __uint_as_float(two_23 | ((words[0] >> (4 * k)) & 0xfu)) - 8388616.f;  // 2^23 + 8, the stored offset
        } else {
            const auto half = static_cast<unsigned short>((words[k / 2] >> (16 * (k % 2))) & 0xffffu);
            out[k] = type == WeightType::bf16 ? bf16_to_f32(half) : f16_to_f32(half);
        }
    }
}

// What one matvec launch computes: up to three products of the same input (decode's q, k and v
// projections), the input optionally RMS-normalized on the way in.
struct MatvecArgs {
    const float* x = nullptr;
    int n_tokens = 0, d_in = 0;
    Norm norm{nullptr, WeightType::f32, 0.f};  // weight nullptr: x as it is
    Product parts[3]{};
    int n_parts = 0;
    const void* w_up = nullptr;  // gated: SwiGLU's up matrix beside parts[0], the gate
    bool accumulate = false;     // out += the product (a residual add without a kernel of its own)
};

// 8 consecutive norm weights from i on, widened.
__device__ inline void load_norm8(const Norm& norm, int i, float* out) {
    switch (norm.type) {
        case WeightType::bf16:
            return widen<WeightType::bf16>(load_chunk<WeightType::bf16>(norm.weight, i, nullptr), out);
        case WeightType::f16: return widen<WeightType::f16>(load_chunk<WeightType::f16>(norm.weight, i, nullptr), out);
        default: return widen<WeightType::f32>(load_chunk<WeightType::f32>(norm.weight, i, nullptr), out);
    }
}

// Rows a matrix-vector block computes: each block reads the activations (and the norm's weights) once
// for all of them from L2. A 4096-wide row of 4-bit blocks is 2.3 KB against 16 KB of f32 activations
// and 8 KB of norm weights, so with a block per row that traffic, not the weights, bounded the kernel
// (on the H100 4 rows took Q4_K's gate/up from 15% to 26% of HBM, our q4's from 45% to 61%). Fewer with
// more tokens, whose sums take registers per row; one for 16-bit weights (8 KB rows, 97% already) and
// for Q8_0 and Q4_0, whose chunks load byte by byte (4 rows slowed them by 10-25%); two for Q5_K's and
// Q6_K's gate/up, which with 4 rows took 160 registers and ran at half their speed.
template <WeightType type, int max_tokens, bool gated>
constexpr int matvec_rows = type == WeightType::f32 || type == WeightType::f16 || type == WeightType::bf16 ||
                                    type == WeightType::q8_0 || type == WeightType::q4_0 || max_tokens > 4
                                ? 1
                            : max_tokens > 2 || (gated && (type == WeightType::q5_k || type == WeightType::q6_k)) ? 2
                                                                                                                  : 4;

// A block per `rows` consecutive output rows, rows numbered across the parts (each part's d_out a
// multiple of `rows`, checked by the caller, so a block stays in one part); n_tokens <= max_tokens and
// d_in % 8 == 0. Each weight is read once and serves every token from registers, so the kernel is
// bound by memory bandwidth; the warps' partial sums are added in a fixed order. With a norm, the
// threads also sum the squares of the inputs they read anyway and multiply them by the norm's weights:
// the normalization costs no pass of its own. `gated` (SwiGLU): the block reads the same rows of w_up as
// well and writes silu(gate) * up, so the two products share the activations and neither is written.
template <WeightType type, int max_tokens, bool gated>
__global__ void matvec_kernel(const MatvecArgs a) {
    constexpr int rows = matvec_rows<type, max_tokens, gated>;
    static_assert(matvec_loads % rows == 0 && kquant_loads % rows == 0, "each row of a block takes its share of loads");
    constexpr int n_warps = matvec_threads / warp_size, n_sums = gated ? 3 : 2;
    __shared__ float partial[n_warps][rows][max_tokens][n_sums];
    int j0 = static_cast<int>(blockIdx.x) * rows;
    const int tid = static_cast<int>(threadIdx.x), warp = tid / warp_size, lane = tid % warp_size;
    Product part = a.parts[0];
    if (j0 >= part.d_out && a.n_parts > 1) {
        j0 -= part.d_out;
        part = a.parts[1];
        if (j0 >= part.d_out && a.n_parts > 2) {
            j0 -= part.d_out;
            part = a.parts[2];
        }
    }
    const int d_in = a.d_in, n_tokens = a.n_tokens;
    const bool normed = a.norm.weight != nullptr;
    float acc[rows][max_tokens] = {}, acc_up[rows][max_tokens] = {}, squares[max_tokens] = {};
    // 8 weights of each row from input i on (unscaled quants, or values), with their scales and minimums
    // where quantized: the activations and norm weights are read once for the rows.
    const auto accumulate = [&](int i, const float(&wv)[rows][8], const float(&scale)[rows], const float(&min)[rows],
                                const float(&uv)[rows][8], const float(&up_scale)[rows], const float(&up_min)[rows]) {
        float g[8];
        if (normed) load_norm8(a.norm, i, g);
        for (int t = 0; t < max_tokens; ++t) {
            if (t >= n_tokens) continue;
            const float* xt = a.x + static_cast<std::size_t>(t) * d_in + i;
            const float4 lo = *reinterpret_cast<const float4*>(xt), hi = *reinterpret_cast<const float4*>(xt + 4);
            float xv[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
            float sum_x = 0.f;
            if (normed)
                for (int e = 0; e < 8; ++e) squares[t] += xv[e] * xv[e], xv[e] *= g[e];
            if constexpr (has_min<type>)
                for (int e = 0; e < 8; ++e) sum_x += xv[e];
            for (int r = 0; r < rows; ++r) {
                float dot = 0.f, dot_up = 0.f;
                for (int e = 0; e < 8; ++e) {
                    dot += wv[r][e] * xv[e];
                    if constexpr (gated) dot_up += uv[r][e] * xv[e];
                }
                if constexpr (quantized<type>) {
                    acc[r][t] += dot * scale[r];
                    if constexpr (gated) acc_up[r][t] += dot_up * up_scale[r];
                    if constexpr (has_min<type>) {
                        acc[r][t] -= sum_x * min[r];
                        if constexpr (gated) acc_up[r][t] -= sum_x * up_min[r];
                    }
                } else {
                    acc[r][t] += dot;
                    if constexpr (gated) acc_up[r][t] += dot_up;
                }
            }
        }
    };
    if constexpr (is_kquant(type)) {
        // Pieces of 16 weights (two runs of 8), the pieces of the thread's share loaded before any is used.
        constexpr int loads = kquant_loads / rows;
        const int n_pieces = d_in / kquant_piece;
        const std::size_t row_bytes = static_cast<std::size_t>(d_in / 256) * kquant_block_bytes(type);
        const auto* w_rows = static_cast<const unsigned char*>(part.w) + static_cast<std::size_t>(j0) * row_bytes;
        const auto* up_rows =
            gated ? static_cast<const unsigned char*>(a.w_up) + static_cast<std::size_t>(j0) * row_bytes : nullptr;
        for (int p0 = tid; p0 < n_pieces; p0 += matvec_threads * loads) {
            KQuantRaw c[loads][rows], u[gated ? loads : 1][gated ? rows : 1];
            for (int k = 0; k < loads; ++k) {
                const int p = p0 + k * matvec_threads;
                if (p >= n_pieces) continue;
                const std::size_t block = static_cast<std::size_t>(p / kquant_pieces) * kquant_block_bytes(type);
                for (int r = 0; r < rows; ++r) {
                    c[k][r] = kquant_load(type, w_rows + r * row_bytes + block, p % kquant_pieces);
                    if constexpr (gated)
                        u[k][r] = kquant_load(type, up_rows + r * row_bytes + block, p % kquant_pieces);
                }
            }
            for (int k = 0; k < loads; ++k) {
                const int p = p0 + k * matvec_threads;
                if (p >= n_pieces) continue;
                KQuantRuns w[rows], up[gated ? rows : 1];
                for (int r = 0; r < rows; ++r) {
                    w[r] = kquant_runs(type, c[k][r], p % kquant_pieces);
                    if constexpr (gated) up[r] = kquant_runs(type, u[k][r], p % kquant_pieces);
                }
                for (int run = 0; run < 2; ++run) {
                    float wv[rows][8], scale[rows], min[rows], uv[rows][8], up_scale[rows], up_min[rows];
                    for (int r = 0; r < rows; ++r) {
                        for (int e = 0; e < 8; ++e) wv[r][e] = w[r].q[run][e];
                        scale[r] = w[r].scale[run], min[r] = w[r].min[run];
                        if constexpr (gated) {
                            for (int e = 0; e < 8; ++e) uv[r][e] = up[r].q[run][e];
                            up_scale[r] = up[r].scale[run], up_min[r] = up[r].min[run];
                        }
                    }
                    accumulate((p / kquant_pieces) * 256 + w[0].offset[run], wv, scale, min, uv, up_scale, up_min);
                }
            }
        }
    } else {
        constexpr int loads = matvec_loads / rows;
        const auto n_rows = static_cast<std::size_t>(part.d_out), cols = static_cast<std::size_t>(d_in);
        const float* scales = quant_scales(part.w, type, n_rows, cols);
        const float* up_scales = gated ? quant_scales(a.w_up, type, n_rows, cols) : nullptr;
        const std::size_t first = static_cast<std::size_t>(j0) * d_in;
        constexpr int stride = matvec_threads * 8;
        for (int i0 = tid * 8; i0 < d_in; i0 += stride * loads) {
            Chunk c[loads][rows], u[gated ? loads : 1][gated ? rows : 1];
            for (int k = 0; k < loads; ++k) {
                const int i = i0 + k * stride;
                if (i >= d_in) continue;
                for (int r = 0; r < rows; ++r) {
                    c[k][r] = load_chunk<type>(part.w, first + r * cols + i, scales);
                    if constexpr (gated) u[k][r] = load_chunk<type>(a.w_up, first + r * cols + i, up_scales);
                }
            }
            for (int k = 0; k < loads; ++k) {
                const int i = i0 + k * stride;
                if (i >= d_in) continue;
                float wv[rows][8], scale[rows], uv[rows][8], up_scale[rows];
                const float none[rows] = {};
                for (int r = 0; r < rows; ++r) {
                    widen<type>(c[k][r], wv[r]);
                    scale[r] = c[k][r].scale;
                    if constexpr (gated) widen<type>(u[k][r], uv[r]), up_scale[r] = u[k][r].scale;
                }
                accumulate(i, wv, scale, none, uv, up_scale, none);
            }
        }
    }
    for (int t = 0; t < max_tokens; ++t) {
        if (t >= n_tokens) continue;
        const float sum_squares = warp_sum(squares[t]);
        for (int r = 0; r < rows; ++r) {
            const float sums[3] = {warp_sum(acc[r][t]), sum_squares, gated ? warp_sum(acc_up[r][t]) : 0.f};
            if (lane == 0)
                for (int k = 0; k < n_sums; ++k) partial[warp][r][t][k] = sums[k];
        }
    }
    __syncthreads();
    if (tid >= rows * n_tokens) return;
    const int r = tid / n_tokens, t = tid % n_tokens, j = j0 + r;
    float sum = 0.f, sum_squares = 0.f, sum_up = 0.f;
    for (int w = 0; w < n_warps; ++w) {
        sum += partial[w][r][t][0], sum_squares += partial[w][r][t][1];
        if constexpr (gated) sum_up += partial[w][r][t][2];
    }
    const float scale = normed ? rsqrtf(sum_squares / static_cast<float>(d_in) + a.norm.eps) : 1.f;
    sum = sum * scale + (part.bias ? load_weight(part.bias, part.bias_type, j) : 0.f);
    const float result = gated ? sum / (1.f + expf(-sum)) * (sum_up * scale) : sum;
    float& o = part.out[static_cast<std::size_t>(t) * part.d_out + j];
    o = a.accumulate ? o + result : result;
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

template <WeightType type, int max_tokens, bool gated>
void launch_matvec_rows(const MatvecArgs& a, cudaStream_t s) {
    constexpr int rows = matvec_rows<type, max_tokens, gated>;
    int total = 0;
    bool whole = true;  // every part's rows fill whole blocks
    for (int p = 0; p < a.n_parts; ++p) total += a.parts[p].d_out, whole = whole && a.parts[p].d_out % rows == 0;
    if (!whole) {  // the kernel for the most tokens takes a row per block
        matvec_kernel<type, matvec_max_tokens, gated><<<static_cast<unsigned>(total), matvec_threads, 0, s>>>(a);
        return;
    }
    matvec_kernel<type, max_tokens, gated><<<static_cast<unsigned>(total / rows), matvec_threads, 0, s>>>(a);
}

template <WeightType type, bool gated>
void launch_matvec(const MatvecArgs& a, cudaStream_t s) {
    if (a.n_tokens == 1) return launch_matvec_rows<type, 1, gated>(a, s);
    if (a.n_tokens == 2) return launch_matvec_rows<type, 2, gated>(a, s);
    if (a.n_tokens <= 4) return launch_matvec_rows<type, 4, gated>(a, s);
    launch_matvec_rows<type, matvec_max_tokens, gated>(a, s);
}

template <bool gated>
void launch_matvec(const MatvecArgs& a, cudaStream_t s) {
    switch (a.parts[0].type) {
        case WeightType::f32: return launch_matvec<WeightType::f32, gated>(a, s);
        case WeightType::f16: return launch_matvec<WeightType::f16, gated>(a, s);
        case WeightType::bf16: return launch_matvec<WeightType::bf16, gated>(a, s);
        case WeightType::q8: return launch_matvec<WeightType::q8, gated>(a, s);
        case WeightType::q4: return launch_matvec<WeightType::q4, gated>(a, s);
        case WeightType::q8_0: return launch_matvec<WeightType::q8_0, gated>(a, s);
        case WeightType::q4_0: return launch_matvec<WeightType::q4_0, gated>(a, s);
        case WeightType::q4_k: return launch_matvec<WeightType::q4_k, gated>(a, s);
        case WeightType::q5_k: return launch_matvec<WeightType::q5_k, gated>(a, s);
        case WeightType::q6_k: return launch_matvec<WeightType::q6_k, gated>(a, s);
    }
}

bool on_matvec(int n_tokens, int d_in) { return n_tokens <= matvec_max_tokens && d_in % 8 == 0; }

void product(const Product& p, const float* x, int n_tokens, int d_in, bool accumulate, const Stream& stream,
             const Blas* blas) {
    if (blas && n_tokens >= blas_min_tokens &&
        blas_matmul(p.out, x, p.w, p.type, p.bias, p.bias_type, n_tokens, d_in, p.d_out, accumulate, stream, *blas))
        return;
    const cudaStream_t s = native(stream);
    if (on_matvec(n_tokens, d_in)) {
        MatvecArgs a;
        a.x = x, a.n_tokens = n_tokens, a.d_in = d_in, a.parts[0] = p, a.n_parts = 1, a.accumulate = accumulate;
        launch_matvec<false>(a, s);
    } else {
        const dim3 grid(static_cast<unsigned>((p.d_out + tile - 1) / tile),
                        static_cast<unsigned>((n_tokens + tile - 1) / tile));
        gemm_kernel<<<grid, 256, 0, s>>>(p.out, x, p.w, p.type, p.bias, p.bias_type, n_tokens, d_in, p.d_out,
                                         accumulate);
    }
    GPU_CHECK_LAUNCH();
}

}  // namespace

void matmul(float* out, const float* x, const void* w, WeightType type, const void* bias, WeightType bias_type,
            int n_tokens, int d_in, int d_out, const Stream& stream, const Blas* blas) {
    if (n_tokens == 0) return;
    product(Product{out, w, type, d_out, bias, bias_type}, x, n_tokens, d_in, false, stream, blas);
}

void matmul_add(float* x, const float* in, const void* w, WeightType type, int n_tokens, int d_in, int d_out,
                const Stream& stream, const Blas* blas) {
    if (n_tokens == 0) return;
    product(Product{x, w, type, d_out}, in, n_tokens, d_in, true, stream, blas);
}

void norm_matmul(std::span<const Product> products, const float* x, const Norm& norm, float* scratch, int n_tokens,
                 int d_in, const Stream& stream, const Blas* blas) {
    if (n_tokens == 0 || products.empty()) return;
    if (on_matvec(n_tokens, d_in) && products.size() <= 3) {
        // A launch per weight format (a Q4_K_M layer's v is Q6_K beside Q4_K's q and k), each normalizing
        // the input as it reads it: no pass of its own for the norm either way.
        bool launched[3] = {};
        for (std::size_t first = 0; first < products.size(); ++first) {
            if (launched[first]) continue;
            MatvecArgs a;
            a.x = x, a.n_tokens = n_tokens, a.d_in = d_in, a.norm = norm;
            for (std::size_t i = first; i < products.size(); ++i)
                if (products[i].type == products[first].type) a.parts[a.n_parts++] = products[i], launched[i] = true;
            launch_matvec<false>(a, native(stream));
            GPU_CHECK_LAUNCH();
        }
        return;
    }
    rmsnorm(scratch, x, norm.weight, norm.type, n_tokens, d_in, norm.eps, stream);
    for (const auto& p : products) product(p, scratch, n_tokens, d_in, false, stream, blas);
}

void norm_matmul_swiglu(float* out, float* up, float* scratch, const float* x, const Norm& norm, const void* w_gate,
                        const void* w_up, WeightType type, int n_tokens, int d_in, int d_out, const Stream& stream,
                        const Blas* blas) {
    if (n_tokens == 0) return;
    if (on_matvec(n_tokens, d_in)) {
        MatvecArgs a;
        a.x = x, a.n_tokens = n_tokens, a.d_in = d_in, a.norm = norm, a.w_up = w_up;
        a.parts[0] = Product{out, w_gate, type, d_out}, a.n_parts = 1;
        launch_matvec<true>(a, native(stream));
        GPU_CHECK_LAUNCH();
        return;
    }
    rmsnorm(scratch, x, norm.weight, norm.type, n_tokens, d_in, norm.eps, stream);
    product(Product{out, w_gate, type, d_out}, scratch, n_tokens, d_in, false, stream, blas);
    product(Product{up, w_up, type, d_out}, scratch, n_tokens, d_in, false, stream, blas);
    swiglu(out, up, static_cast<std::size_t>(n_tokens) * d_out, stream);
}

}  // namespace runner::gpu
