// Block quantization of weight matrices for streaming (AIRLLM_COMPRESSION=8bit|4bit): fewer bytes
// over the host->device link, widened back inside the GPU kernels. Symmetric blocks of
// quant_block weights along a row, one f32 scale each (layout in model/weight_format.h).
#pragma once

#include <cstddef>
#include <string>

#include "runner/model/safetensors.h"
#include "runner/model/weight_format.h"

namespace runner {

enum class Compression { none, q8, q4 };

// "none", "8bit", "4bit" (AIRLLM_COMPRESSION's values); false for anything else.
bool parse_compression(const std::string& text, Compression& out);
const char* compression_name(Compression c);
WeightType quantized_type(Compression c);  // q8 or q4; only for c != none

// Whether `w` is compressed: 2-D, rows a multiple of the block.
bool quantizable(const TensorView& w);

// Writes w ([d_out, d_in], any stored dtype) quantized to `out` (quant_bytes of it), rows split
// over `threads` threads.
void quantize_matrix(const TensorView& w, WeightType type, std::byte* out, unsigned threads);

// The weight at [row, col] of a quantized matrix, as the kernels see it (for tests and references).
float dequantized(const std::byte* q, WeightType type, std::size_t d_out, std::size_t d_in, std::size_t row,
                  std::size_t col);

}  // namespace runner
