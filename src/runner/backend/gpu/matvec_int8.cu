// Decode's products with quantized weights as integer dot products, the way llama.cpp's mmvq kernels
// compute them: the input is quantized to 8 bits per 32 once (normalized first where the launch
// normalizes), and each half piece of 16 weights meets its 16 activations in four 4-way byte dot
// products (dp4a on NVIDIA, v_dot4 on AMD), scaled once in f32; a format's minimum or offset comes off
// once per half, times the activations' sum of 16, which the quantization keeps. Widening each 4-6 bit
// weight to f32 for an FMA took 3-4 instructions a weight and held Q4_K's gate/up to 27% of HBM on the
// H100; the f32 activations each block re-read from L2 (16 KB a row of 4096) cost as much as the
// weights. The activations round as the CPU's int8 products round theirs (cpu::quantize_activations, the
// same steps), so both engines see the same inputs.

#include <cstdint>
#include <string>

#include "runner/backend/gpu/block_reduce.h"
#include "runner/backend/gpu/matvec.h"

namespace runner::gpu {

namespace {

constexpr int quantize_threads = 64;
constexpr int quantize_run = 8;  // activations per thread: a quad of threads quantizes a block
static_assert(4 * quantize_run == act_block && 2 * quantize_run == act_half, "quads and pairs of threads");

// x[t, :] (times the norm's weights over x's RMS, with a norm) into `in` (int8_input.h). It sits
// on the critical path of every product, so its latency counts, not its bandwidth: several thread
// blocks per token, each summing the row's squares itself (16-56 KB from L2) rather than waiting for
// another's, and 8 values a thread, the block's maximum and sums of 16 taken across its quad (a thread
// per block of 32 took 32 dependent steps each, and 2 thread blocks of a 4096-wide row).
__global__ void quantize_kernel(Int8Input in, const float* x, Norm norm, int d_in) {
    const int t = static_cast<int>(blockIdx.y), tid = static_cast<int>(threadIdx.x);
    const float* xt = x + static_cast<std::size_t>(t) * d_in;
    let_next_kernel_start();
    wait_for_previous_kernel();
    float inv_rms = 1.f;
    if (norm.weight) {
        float squares = 0.f;
        for (int i = tid * 4; i < d_in; i += quantize_threads * 4) {
            const float4 v = *reinterpret_cast<const float4*>(xt + i);
            squares += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
        inv_rms = rsqrtf(block_reduce<false>(squares) / static_cast<float>(d_in) + norm.eps);
    }
    // Threads past the row still take part in their quad's shuffles (whole quads: d_in % 32 == 0).
    const int at = (static_cast<int>(blockIdx.x) * quantize_threads + tid) * quantize_run;
    const bool inside = at < d_in;
    float v[quantize_run] = {};
    if (inside)
        for (int l = 0; l < quantize_run; l += 4) {
            const float4 f = *reinterpret_cast<const float4*>(xt + at + l);
            v[l] = f.x, v[l + 1] = f.y, v[l + 2] = f.z, v[l + 3] = f.w;
        }
    if (norm.weight && inside)
        for (int l = 0; l < quantize_run; ++l) v[l] = v[l] * inv_rms * load_weight(norm.weight, norm.type, at + l);
    quantize_block(in, static_cast<std::size_t>(t) * d_in + at, v, inside);
}

// The 16 signed bytes of q against x's: four 4-way byte dot products.
__device__ inline int dot16(const int (&q)[4], int4 x) {
    return dot4(q[3], x.w, dot4(q[2], x.z, dot4(q[1], x.y, dot4(q[0], x.x, 0))));
}

// Half h of a piece against its 16 activations x (ds: their block's scale, and it times their sum):
// the scaled integer product, less the minimum or offset where the format has one (a constant 0 times
// ds.y would still cost a multiply, the compiler keeping it for a NaN's sake).
template <WeightType type>
__device__ inline float half_sum(const PieceInts& w, int h, int4 x, float2 ds) {
    const float product = ds.x * w.scale[h] * static_cast<float>(dot16(w.q[h], x));
    if constexpr (type == WeightType::q8 || type == WeightType::q8_0) return product;
    return product - w.min[h] * ds.y;
}

constexpr int int8_threads = 128;
// Pieces of 32 weights a thread loads before it unpacks any, shared among the block's rows: with one in
// flight each waits out a whole memory latency.
constexpr int piece_loads = 4;

// Rows a block computes: each block reads the activations once for all of them from L2. Fewer with more
// tokens, whose sums take registers per row.
template <int max_tokens>
constexpr int int8_rows = max_tokens <= 2   ? 4
                          : max_tokens <= 4 ? 2
                                            : 1;

// A row's bytes: our q8 and q4 keep their scales apart (quant_scales_offset).
constexpr std::size_t row_bytes(WeightType type, int d_in) {
    const auto n = static_cast<std::size_t>(d_in);
    return type == WeightType::q8 ? n : type == WeightType::q4 ? n / 2 : ggml_row_bytes(type, n);
}

// Piece p of a row: ggml's blocks by ggml_blocks.h; our q8 (32 bytes) and q4 (16 bytes, weights 2i and
// 2i + 1 in byte i's low and high nibbles) are weights 32p.. in order, `block` at their f32 scale.
template <WeightType type>
__device__ inline PieceRaw load_piece(const unsigned char* row, const float* row_scales, int p) {
    if constexpr (type == WeightType::q8 || type == WeightType::q4) {
        PieceRaw r;
        const int n = type == WeightType::q8 ? 8 : 4;
        load_aligned_words(row + 4 * n * p, r.q, n);
        r.block = reinterpret_cast<const unsigned char*>(row_scales + p);
        return r;
    } else {
        return piece_load(type, row, p);
    }
}

template <WeightType type>
__device__ inline PieceInts unpack_piece(const PieceRaw& r, int p) {
    if constexpr (type == WeightType::q8 || type == WeightType::q4) {
        PieceInts out;
        const float d = *reinterpret_cast<const float*>(r.block);
        for (int h = 0; h < 2; ++h) {
            out.column[h] = piece_weights * p + 16 * h;
            out.scale[h] = d, out.min[h] = type == WeightType::q4 ? 8.f * d : 0.f;
            for (int w = 0; w < 4; ++w) {
                if constexpr (type == WeightType::q8) {
                    out.q[h][w] = static_cast<int>(r.q[4 * h + w]);
                } else {  // even weights' and odd weights' nibbles interleaved back into order
                    const unsigned word = r.q[2 * h + w / 2], even = word & 0x0f0f0f0fu,
                                   odd = (word >> 4) & 0x0f0f0f0fu;
                    out.q[h][w] = static_cast<int>(__byte_perm(even, odd, w % 2 ? 0x7362 : 0x5140));
                }
            }
        }
        return out;
    } else {
        return piece_ints(type, r, p);
    }
}

// A block per `rows` consecutive output rows, rows numbered across the parts (each part's d_out a multiple
// of `rows`, checked by the caller); n_tokens <= max_tokens. Each weight is read once and serves every
// token; the warps' partial sums are added in a fixed order. `gated` (SwiGLU): the block reads the same
// rows of w_up as well and writes silu(gate) * up.
template <WeightType type, int max_tokens, bool gated>
__device__ __forceinline__ void compute_rows(const MatvecArgs& a, const Int8Input& in) {
    constexpr int rows = int8_rows<max_tokens>, loads = piece_loads / rows, n_sums = gated ? 2 : 1;
    static_assert(piece_loads % rows == 0, "each row of a block takes its share of loads");
    constexpr int n_warps = int8_threads / warp_size;
    __shared__ float partial[n_warps][rows][max_tokens][n_sums];
    int j0 = static_cast<int>(blockIdx.x) * rows;
    const Product part = block_part(a, j0);
    const int tid = static_cast<int>(threadIdx.x), warp = tid / warp_size, lane = tid % warp_size;
    const int d_in = a.d_in, n_tokens = a.n_tokens, n_pieces = d_in / piece_weights, n_halves = d_in / act_half;
    const std::size_t bytes = row_bytes(type, d_in);
    const auto* w_rows = static_cast<const unsigned char*>(part.w) + static_cast<std::size_t>(j0) * bytes;
    const auto* up_rows =
        gated ? static_cast<const unsigned char*>(a.w_up) + static_cast<std::size_t>(j0) * bytes : nullptr;
    const auto n_out = static_cast<std::size_t>(part.d_out), cols = static_cast<std::size_t>(d_in);
    const float* scales = quant_scales(part.w, type, n_out, cols);
    const float* up_scales = gated ? quant_scales(a.w_up, type, n_out, cols) : nullptr;
    const auto scales_of = [&](const float* s, int r) {
        return s ? s + static_cast<std::size_t>(j0 + r) * (d_in / quant_block) : nullptr;
    };
    float acc[rows][max_tokens] = {}, acc_up[rows][max_tokens] = {};
    let_next_kernel_start();
    for (int p0 = tid; p0 < n_pieces; p0 += int8_threads * loads) {
        // Unrolled so that c and u stay in registers: at 4 and 8 tokens nvcc left these loops rolled and kept
        // the pieces in a 224-464 byte local frame, and the gated products ran 3-4x slower (H100).
        PieceRaw c[loads][rows], u[gated ? loads : 1][gated ? rows : 1];
#pragma unroll
        for (int k = 0; k < loads; ++k) {
            const int p = p0 + k * int8_threads;
            if (p >= n_pieces) continue;
            for (int r = 0; r < rows; ++r) {
                c[k][r] = load_piece<type>(w_rows + r * bytes, scales_of(scales, r), p);
                if constexpr (gated) u[k][r] = load_piece<type>(up_rows + r * bytes, scales_of(up_scales, r), p);
            }
        }
        // The first weights are on their way before the input is ready (launch_overlapped).
        wait_for_previous_kernel();
#pragma unroll
        for (int k = 0; k < loads; ++k) {
            const int p = p0 + k * int8_threads;
            if (p >= n_pieces) continue;
            PieceInts w[rows], up[gated ? rows : 1];
            for (int r = 0; r < rows; ++r) {
                w[r] = unpack_piece<type>(c[k][r], p);
                if constexpr (gated) up[r] = unpack_piece<type>(u[k][r], p);
            }
            for (int h = 0; h < 2; ++h) {
                const int i = w[0].column[h];
                for (int t = 0; t < max_tokens; ++t) {
                    if (t >= n_tokens) continue;
                    const int4 x = *reinterpret_cast<const int4*>(in.q + static_cast<std::size_t>(t) * d_in + i);
                    const float2 ds = in.ds[static_cast<std::size_t>(t) * n_halves + i / act_half];
                    for (int r = 0; r < rows; ++r) {
                        acc[r][t] += half_sum<type>(w[r], h, x, ds);
                        if constexpr (gated) acc_up[r][t] += half_sum<type>(up[r], h, x, ds);
                    }
                }
            }
        }
    }
    wait_for_previous_kernel();  // a thread past the row's end
    for (int t = 0; t < max_tokens; ++t) {
        if (t >= n_tokens) continue;
        for (int r = 0; r < rows; ++r) {
            const float sums[2] = {warp_sum(acc[r][t]), gated ? warp_sum(acc_up[r][t]) : 0.f};
            if (lane == 0)
                for (int k = 0; k < n_sums; ++k) partial[warp][r][t][k] = sums[k];
        }
    }
    __syncthreads();
    if (tid >= rows * n_tokens) return;
    const int r = tid / n_tokens, t = tid % n_tokens;
    float sum = 0.f, sum_up = 0.f;
    for (int w = 0; w < n_warps; ++w) {
        sum += partial[w][r][t][0];
        if constexpr (gated) sum_up += partial[w][r][t][n_sums - 1];
    }
    store_row<gated>(a, part, t, j0 + r, sum, sum_up);
}

template <WeightType type, int max_tokens, bool gated>
__global__ void __launch_bounds__(int8_threads) matvec_int8_kernel(const MatvecArgs a, const Int8Input in) {
    compute_rows<type, max_tokens, gated>(a, in);
}

// Products of one input in two formats, each block reading its own rows' (a Q4_K_M layer's v in Q6_K beside
// q and k in Q4_K): one launch instead of two. The short projections' launches spend most of their time
// starting and finishing (v's 3.4 MB took 5.0 us on an H100, 1.1 us of it its bytes at HBM's rate).
template <WeightType first, WeightType second, int max_tokens>
__global__ void __launch_bounds__(int8_threads) matvec_int8_pair_kernel(const MatvecArgs a, const Int8Input in) {
    int j0 = static_cast<int>(blockIdx.x) * int8_rows<max_tokens>;
    if (block_part(a, j0).type == first)
        compute_rows<first, max_tokens, false>(a, in);
    else
        compute_rows<second, max_tokens, false>(a, in);
}

using Int8Kernel = void (*)(MatvecArgs, Int8Input);

// The kernel for one launch's formats (first == second: products of one format).
template <WeightType first, WeightType second, int max_tokens, bool gated>
constexpr Int8Kernel int8_kernel() {
    if constexpr (first == second)
        return matvec_int8_kernel<first, max_tokens, gated>;
    else
        return matvec_int8_pair_kernel<first, second, max_tokens>;
}

template <WeightType first, WeightType second, int max_tokens, bool gated>
void launch_rows(const MatvecArgs& a, Int8Input in, cudaStream_t s) {
    constexpr int rows = int8_rows<max_tokens>;
    int total = 0;
    bool whole = true;  // every part's rows fill whole blocks
    for (int p = 0; p < a.n_parts; ++p) total += a.parts[p].d_out, whole = whole && a.parts[p].d_out % rows == 0;
    if (!whole) {  // the kernel for the most tokens takes a row per block
        launch_overlapped(int8_kernel<first, second, matvec_max_tokens, gated>(), static_cast<unsigned>(total),
                          int8_threads, s, a, in);
        return;
    }
    launch_overlapped(int8_kernel<first, second, max_tokens, gated>(), static_cast<unsigned>(total / rows),
                      int8_threads, s, a, in);
}

template <WeightType first, WeightType second, bool gated>
void launch(const MatvecArgs& a, Int8Input in, cudaStream_t s) {
    if (a.n_tokens == 1) return launch_rows<first, second, 1, gated>(a, in, s);
    if (a.n_tokens == 2) return launch_rows<first, second, 2, gated>(a, in, s);
    if (a.n_tokens <= 4) return launch_rows<first, second, 4, gated>(a, in, s);
    launch_rows<first, second, matvec_max_tokens, gated>(a, in, s);
}

// The launch's formats: the first part's, and one other where int8_pair allows it (not gated); anything else
// is a caller's bug.
template <bool gated>
void launch(const MatvecArgs& a, Int8Input in, cudaStream_t s) {
    using enum WeightType;
    WeightType first = a.parts[0].type, second = first;
    for (int p = 1; p < a.n_parts; ++p) {
        const WeightType type = a.parts[p].type;
        if (second == first && !gated && int8_pair(first, type)) second = type;
        if (type != first && type != second)
            throw Error(
                "matvec_int8: one launch takes products of one weight format, or of two that int8_pair "
                "allows, not gated");
    }
    if (first != second) {
        if (first > second) std::swap(first, second);
        if (first == q4_k && second == q5_k) return launch<q4_k, q5_k, false>(a, in, s);
        if (first == q4_k && second == q6_k) return launch<q4_k, q6_k, false>(a, in, s);
        if (first == q5_k && second == q6_k) return launch<q5_k, q6_k, false>(a, in, s);
        throw Error("matvec_int8: no kernel pairs these two weight formats (int8_pair)");
    }
    switch (first) {
        case q8: return launch<q8, q8, gated>(a, in, s);
        case q4: return launch<q4, q4, gated>(a, in, s);
        case q8_0: return launch<q8_0, q8_0, gated>(a, in, s);
        case q4_0: return launch<q4_0, q4_0, gated>(a, in, s);
        case q4_k: return launch<q4_k, q4_k, gated>(a, in, s);
        case q5_k: return launch<q5_k, q5_k, gated>(a, in, s);
        case q6_k: return launch<q6_k, q6_k, gated>(a, in, s);
        default: return;
    }
}

}  // namespace

bool int8_pair(WeightType a, WeightType b) {
    using enum WeightType;
    const auto k_quant = [](WeightType t) { return t == q4_k || t == q5_k || t == q6_k; };
    return a != b && k_quant(a) && k_quant(b);
}

void quantize_input(const MatvecArgs& a, cudaStream_t s) {
    const int per_block = quantize_threads * quantize_run;
    const dim3 grid(static_cast<unsigned>((a.d_in + per_block - 1) / per_block), static_cast<unsigned>(a.n_tokens));
    launch_overlapped(quantize_kernel, grid, quantize_threads, s, int8_input(a.scratch, a.n_tokens, a.d_in), a.x,
                      a.norm, a.d_in);
}

void matvec_int8(const MatvecArgs& a, cudaStream_t s) {
    // Our q8 and q4 and ggml's Q4_K and Q5_K are read 16 bytes at a time, the other formats in 4-byte
    // words; every slab and allocation that holds weights is 256-byte aligned, so one rule for all, and
    // a matrix that breaks it is a caller's bug, not a case to serve.
    const auto check_aligned = [](const void* w) {
        if (const auto past = reinterpret_cast<std::uintptr_t>(w) % 16; past != 0)
            throw Error("matvec_int8: a quantized weight matrix starts " + std::to_string(past) +
                        " bytes past a 16-byte boundary; weights must sit in 16-byte aligned buffers");
    };
    if (a.w_up) check_aligned(a.w_up);
    for (int p = 0; p < a.n_parts; ++p) check_aligned(a.parts[p].w);
    const Int8Input in = int8_input(a.scratch, a.n_tokens, a.d_in);
    if (a.w_up)
        launch<true>(a, in, s);
    else
        launch<false>(a, in, s);
}

}  // namespace runner::gpu
