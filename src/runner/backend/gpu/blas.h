// matmul's BLAS path, for matmul.cu only.
#pragma once

#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

// false when the product is not one for the BLAS (f32 weights, more activations than the scratch
// holds, a build without a BLAS): the caller then runs its own kernel. `accumulate`: out += product.
bool blas_matmul(float* out, const float* x, const void* w, WeightType type, const void* bias, WeightType bias_type,
                 int n_tokens, int d_in, int d_out, bool accumulate, const Stream& stream, const Blas& blas);

}  // namespace runner::gpu
