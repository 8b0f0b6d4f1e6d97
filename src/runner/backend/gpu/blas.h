// matmul's BLAS path, for matmul.cu only.
#pragma once

#include <span>

#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

// false when the product is not one for the BLAS (f32 weights, more activations than the scratch
// holds, a build without a BLAS): the caller then runs its own kernel. `accumulate`: out += product.
bool blas_matmul(float* out, const float* x, const void* w, WeightType type, const void* bias, WeightType bias_type,
                 int n_tokens, int d_in, int d_out, bool accumulate, const Stream& stream, const Blas& blas);

// Every product of one normalized input on the BLAS: the norm written once as their 16-bit input instead of
// in f32 and then rounded for each. false, with nothing launched, unless the BLAS takes each product with the
// same 16-bit input.
bool blas_norm_matmul(std::span<const Product> products, const float* x, const Norm& norm, int n_tokens, int d_in,
                      const Stream& stream, const Blas& blas);

// norm_mlp on the BLAS: the norm written once as every gate and up product's 16-bit input, each block's SwiGLU
// as its down product's. false, with nothing launched, unless the BLAS takes every product with one 16-bit type.
bool blas_norm_mlp(float* x, const Norm& norm, std::span<const MlpBlock> blocks, WeightType gate_up_type,
                   WeightType down_type, float* gate, float* up, int n_tokens, int d_in, const Stream& stream,
                   const Blas& blas);

}  // namespace runner::gpu
