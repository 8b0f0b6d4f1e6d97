// Products with quantized rows as integer dot products, the way llama.cpp's CPU backend
// computes them: the activations are quantized to 8 bits per 32 elements, each 32-weight block's
// product with them is an exact integer sum (AVX2's maddubs, or VNNI's dpbusd), and only that sum is
// scaled in f32. Widening every 4-6 bit weight to f32 for an FMA is what held the float path to the
// cores' arithmetic instead of the memory bus. The price is the activations' rounding: each is within
// half a step of its block's largest magnitude / 127 (see the tests for what that does to a product).
//
// Every path (AVX2, VNNI, portable) computes the same integer sums and combines them with the same f32
// operations in the same order, so they agree bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runner/model/weight_format.h"

namespace runner::cpu {

constexpr std::size_t int8_block = 32;

// x[i] ~ d[i / 32] * q[i], d = the block's largest magnitude / 127; d_sum[b] = d[b] * (sum of block b's
// q), for the formats whose weights subtract a minimum; sum16[h] = the sum of the q of half h (16 each),
// for Q6_K, whose weights are stored plus 32 with a scale per 16.
struct Int8Activations {
    std::vector<std::int8_t> q;
    std::vector<float> d, d_sum;
    std::vector<std::int16_t> sum16;
};
// n: a multiple of int8_block; for several tokens, their activations end to end.
void quantize_activations(const float* x, std::size_t n, Int8Activations& out);
// The activations as the products see them: d * q.
std::vector<float> dequantized(const Int8Activations& a);

// Whether the integer products take rows of this format: our q8 and q4, and ggml's Q8_0, Q4_0, Q4_K,
// Q5_K and Q6_K blocks.
constexpr bool takes_int8(WeightType type) { return is_quantized(type) || is_ggml_block(type); }

// A row in one of those formats: ggml's blocks in `quants` (scales inside), or ours with its f32 scales
// one per 32 weights.
struct Int8Row {
    const std::byte* quants;
    const float* scales = nullptr;
};

// dot(row, activations) over n weights (a whole number of the format's blocks).
float dot_int8(WeightType type, Int8Row row, const Int8Activations& x, std::size_t n);
// Two rows of one format at once, each summed exactly as dot_int8 sums it.
void dot_int8_rows2(WeightType type, Int8Row row0, Int8Row row1, const Int8Activations& x, std::size_t n, float* out);

// A prompt's tile: out[r * int8_tile_tokens + t] = the product of rows[r] with token first_token + t, for
// r < n_rows <= int8_tile_rows and t < n_tokens <= int8_tile_tokens, x holding consecutive tokens of n
// activations each (quantize_activations over [tokens, n]). Each row's blocks are decoded once for all
// the tile's tokens, and every result equals the one-token product bit for bit.
constexpr std::size_t int8_tile_rows = 4, int8_tile_tokens = 8;
void dot_int8_tile(WeightType type, const Int8Row* rows, std::size_t n_rows, const Int8Activations& x,
                   std::size_t first_token, std::size_t n_tokens, std::size_t n, float* out);

// Whether a prompt's AVX2 tiles multiply their bytes with AVX512-VNNI's vpdpbusd (one instruction where
// maddubs and madd take two; the same integers), chosen at run time where the CPU has it (for `info`
// and benchmarks).
bool using_vnni();

// Keeps the tiles off VNNI (tests and benchmarks compare both).
void force_no_vnni(bool off);

}  // namespace runner::cpu
