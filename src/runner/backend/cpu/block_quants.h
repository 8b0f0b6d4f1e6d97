// ggml's block-quantized rows, as GGUF files store them (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K), read in place:
// the file's blocks are the format, never re-quantized. A row of n weights is n / block_elements
// blocks (model/safetensors.h). Each block is widened into a small f32 buffer and dotted there, so a
// row's sum is the same sum of the same widened weights however it is reached.
#pragma once

#include <cstddef>

#include "runner/model/safetensors.h"

namespace runner::cpu {

// The row's n weights as f32, exactly as ggml's dequantize_row_* gives them.
void convert_blocks(DType dtype, const std::byte* row, float* out, std::size_t n);

// dot(row, x), a block at a time.
float dot_blocks(DType dtype, const std::byte* row, const float* x, std::size_t n);

}  // namespace runner::cpu
