// The only place with intrinsics. Weight rows of any stored dtype are dotted with f32 activations;
// AVX2+FMA(+F16C) versions are chosen at run time, with a portable scalar fallback beside them.
#pragma once

#include <cstddef>

#include "runner/model/safetensors.h"

namespace runner::cpu {

float bf16_to_f32(std::uint16_t v);
float f16_to_f32(std::uint16_t v);

// Converts `n` elements of a weight row to f32.
void convert_row(DType dtype, const std::byte* row, float* out, std::size_t n);

// dot(row, x) with the row in its stored dtype and f32 accumulation.
float dot_row(DType dtype, const std::byte* row, const float* x, std::size_t n);

// out[0] = dot_row(row0, x), out[1] = dot_row(row1, x), bit for bit, the two rows read together.
void dot_rows2(DType dtype, const std::byte* row0, const std::byte* row1, const float* x, std::size_t n, float* out);

// dot of two f32 vectors.
float dot_f32(const float* a, const float* b, std::size_t n);

// acc += a * x.
void axpy_f32(float a, const float* x, float* acc, std::size_t n);

// Whether the AVX2 paths are in use on this CPU (for `info` and benchmarks).
bool using_avx2();

// Forces the portable paths (tests compare both).
void force_portable(bool portable);

}  // namespace runner::cpu
