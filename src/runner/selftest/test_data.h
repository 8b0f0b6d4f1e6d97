// Known inputs for the kernel checks: seeded random activations, and weight rows of any stored dtype,
// ggml's blocks included (random quants with scales in a realistic range, never NaN or infinite).
#pragma once

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "runner/model/safetensors.h"
#include "runner/model/weight_format.h"

namespace runner::selftest {

std::vector<float> random_floats(std::mt19937& rng, std::size_t n, float scale = 1.f);

// rows x cols weights of `dtype`, row-major, each row row_bytes(dtype, cols) long.
std::vector<std::byte> random_weights(std::mt19937& rng, DType dtype, std::size_t rows, std::size_t cols);

// rows x cols random BF16 weights quantized by offload/quantize to our q8 or q4 (a split layer's host
// rows), quant_bytes(type, rows, cols) long.
std::vector<std::byte> random_quantized(std::mt19937& rng, WeightType type, std::size_t rows, std::size_t cols);

// x as decode's products with quantized weights see it, on either engine: quantized to 8 bits per 32
// (cpu::quantize_activations, whose steps the GPU's quantization repeats) and widened back. x.size()
// is a multiple of 32.
std::vector<float> int8_rounded(const std::vector<float>& x);

// "bf16", "q4_k": a format as the checks' names spell it.
std::string format_name(DType dtype);

// A view of `bytes` as a [rows, cols] tensor of `dtype`.
TensorView view_of(const std::vector<std::byte>& bytes, DType dtype, std::size_t rows, std::size_t cols);
// ... and as an [n] vector: a norm's or a bias's weights.
TensorView vector_view(const std::vector<std::byte>& bytes, DType dtype, std::size_t n);

}  // namespace runner::selftest
