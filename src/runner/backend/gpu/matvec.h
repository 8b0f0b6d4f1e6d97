// What the decode kernels share (matmul.cu's f32 matrix-vector kernel for 16-bit and f32 weights,
// matvec_int8.cu's for quantized ones): one launch's products and how its blocks find theirs.
#pragma once

#include "runner/backend/gpu/int8_input.h"

namespace runner::gpu {

// Decode's kernels serve up to this many tokens from registers; longer passes take the tiled product.
constexpr int matvec_max_tokens = 8;

// What one matrix-vector launch computes: up to three products of the same input (decode's q, k and v
// projections; in one format, or two where int8_pair allows), the input optionally RMS-normalized on the way in.
struct MatvecArgs {
    const float* x = nullptr;
    int n_tokens = 0, d_in = 0;
    Norm norm{nullptr, WeightType::f32, 0.f};  // weight nullptr: x as it is
    Product parts[3]{};
    int n_parts = 0;
    const void* w_up = nullptr;  // gated: SwiGLU's up matrix beside parts[0], the gate
    bool accumulate = false;     // out += the product (a residual add without a kernel of its own)
    float* scratch = nullptr;    // quantized weights: room for [n_tokens, d_in] f32, the int8 activations
};

// Quantized weights (our q8 and q4, ggml's blocks), in matvec_int8.cu: x (normalized, with a.norm)
// quantized to 8 bits per 32 into a.scratch, then the products as integer dot products of it, which one
// quantization can serve several launches of. d_in % 256 == 0 for the K-quants, % 32 otherwise.
void quantize_input(const MatvecArgs& a, cudaStream_t stream);
void matvec_int8(const MatvecArgs& a, cudaStream_t stream);
// Whether one matvec_int8 launch serves products in formats a and b (not gated): the K-quants, which a Q4_K_M
// or Q5_K_M layer mixes in its q/k/v projections.
bool int8_pair(WeightType a, WeightType b);

#if defined(__CUDACC__) || defined(__HIPCC__)
// The product that the rows from j0 on belong to, rows numbered across the parts; j0 becomes the row in it.
__device__ inline Product block_part(const MatvecArgs& a, int& j0) {
    Product part = a.parts[0];
    for (int p = 1; p < a.n_parts && j0 >= part.d_out; ++p) j0 -= part.d_out, part = a.parts[p];
    return part;
}

// Row j of token t's result, from the row's sums (the up product's too, gated): + bias, silu(gate) * up,
// added to the output or stored.
template <bool gated>
__device__ inline void store_row(const MatvecArgs& a, const Product& part, int t, int j, float sum, float sum_up) {
    sum += part.bias ? load_weight(part.bias, part.bias_type, j) : 0.f;
    const float result = gated ? sum / (1.f + expf(-sum)) * sum_up : sum;
    float& o = part.out[static_cast<std::size_t>(t) * part.d_out + j];
    o = a.accumulate ? o + result : result;
}
#endif

}  // namespace runner::gpu
