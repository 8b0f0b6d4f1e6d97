// The only place with intrinsics. Weight rows of any stored dtype are dotted with f32 activations;
// AVX2+FMA(+F16C) versions are chosen at run time, with a portable scalar fallback beside them.
#pragma once

#include <cstddef>

#include "runner/model/safetensors.h"
#include "runner/model/weight_format.h"

namespace runner::cpu {

// How far ahead of the weights it is reading a decode loop prefetches (the float rows here, the quantized
// ones in int8_dot.cpp). A decode row is 2-28 KB, a few 4 KiB pages, and the hardware prefetcher stops at
// every page's end, so on its own it leaves the memory bus idle at each page's start (a 16-core H200 host
// read pairs of bf16 rows at 80-86 GB/s without prefetching, 96-105 with 2 KiB). 8 KiB read a 512 MiB
// matrix's neighbouring row pairs 30% faster on a 16-core H100 host, but slowed the decode steps that
// wait on the host's rows (a Q4_K_M 8B split at 4 GiB: 0.0119-0.0127 s/token against 0.0113-0.0121)
// and left BF16's within their noise (docs/benchmarks.md, 2026-12-07).
constexpr std::size_t row_prefetch_bytes = 2048;

float bf16_to_f32(std::uint16_t v);
float f16_to_f32(std::uint16_t v);

// Converts `n` elements of a weight row to f32.
void convert_row(DType dtype, const std::byte* row, float* out, std::size_t n);

// dot(row, x) with the row in its stored dtype and f32 accumulation.
float dot_row(DType dtype, const std::byte* row, const float* x, std::size_t n);

// out[0] = dot_row(row0, x), out[1] = dot_row(row1, x), bit for bit, the two rows read together.
void dot_rows2(DType dtype, const std::byte* row0, const std::byte* row1, const float* x, std::size_t n, float* out);

// A row of a block-quantized matrix in the GPU kernels' layout (model/weight_format.h, written by
// offload/quantize): n weights, a multiple of quant_block, as int8 (q8) or two per byte, low
// nibble first, stored + 8 (q4), and n / quant_block f32 scales. Each block's products are summed, then
// scaled into the row's sum; dot_qrow and dot_qrows2 do that in the same order, as dot_row and dot_rows2.
struct QuantRow {
    const std::byte* quants;
    const float* scales;
};
// q4 rows are dotted with the activations rearranged once per product (q4_activations): per block its
// even elements, then its odd ones (the order of the block's low and high nibbles, so that no row's
// nibbles need interleaving), then eight values that sum to -8 times the block's sum (for the + 8).
constexpr std::size_t q4_block_activations = 40;
static_assert(quant_block == 32 && q4_block_activations == quant_block + 8);
void q4_activations(const float* x, std::size_t n, float* out);  // out: n / quant_block * q4_block_activations
// x: the activations as they are (q8), or as q4_activations arranged them (q4).
float dot_qrow(WeightType type, QuantRow row, const float* x, std::size_t n);
void dot_qrows2(WeightType type, QuantRow row0, QuantRow row1, const float* x, std::size_t n, float* out);
// The row's weights, quant * scale, exactly as offload/quantize's dequantized() gives them.
void convert_qrow(WeightType type, QuantRow row, float* out, std::size_t n);

// dot of two f32 vectors.
float dot_f32(const float* a, const float* b, std::size_t n);

// A prompt product's tile: out[r * tile_tokens + t] = dot(rows + r * n, x + t * x_stride) for
// r < n_rows <= tile_rows and t < n_tokens <= tile_tokens (either may be 0), f32 rows and activations. Each row's loads
// serve every token and each token's every row, where dot_f32 loads both for every multiply-add. Every
// dot is summed in the same order whatever the tile's size, so a result does not depend on the tile
// its row and token fell into.
constexpr std::size_t tile_rows = 3, tile_tokens = 4;
void dot_tile_f32(const float* rows, std::size_t n_rows, const float* x, std::size_t x_stride, std::size_t n_tokens,
                  std::size_t n, float* out);

// acc += a * x.
void axpy_f32(float a, const float* x, float* acc, std::size_t n);

// Whether the AVX2 paths are in use on this CPU (for `info` and benchmarks).
bool using_avx2();

// Forces the portable paths (tests compare both).
void force_portable(bool portable);

}  // namespace runner::cpu
