// A prompt product as the one GEMM that cuBLAS and rocBLAS both take. Plain C++: blas.cu issues it
// through either library, and tests/ checks it on the CPU against a stand-in that implements rocBLAS's
// documented semantics, so the layouts and leading dimensions are proven without an AMD GPU.
#pragma once

#include "common/rocblas_library.h"

namespace runner::gpu {

enum class GemmInput { f16, bf16 };  // the weights' 16-bit type; the activations are converted to it

// BLAS is column-major: row-major out[n_tokens, d_out] is out^T, an [d_out, n_tokens] matrix with leading
// dimension d_out; row-major W[d_out, d_in] read column-major is W^T [d_in, d_out], so op(A) = (W^T)^T
// = W; row-major x[n_tokens, d_in] read column-major is x^T [d_in, n_tokens], used as it is.
struct MatmulGemm {
    bool transpose_a = true, transpose_b = false;
    int m = 0, n = 0, k = 0;
    int lda = 0, ldb = 0, ldc = 0;
    GemmInput input = GemmInput::bf16;
    float beta = 0.f;  // 1: out += product (the residual add)
};

constexpr MatmulGemm matmul_gemm(int n_tokens, int d_in, int d_out, GemmInput input, bool accumulate) {
    return {true, false, d_out, n_tokens, d_in, d_in, d_in, d_out, input, accumulate ? 1.f : 0.f};
}

inline common::RocblasGemm to_rocblas(const MatmulGemm& g) {
    using namespace common::rocblas_abi;
    common::RocblasGemm call;
    call.op_a = g.transpose_a ? op_transpose : op_none;
    call.op_b = g.transpose_b ? op_transpose : op_none;
    call.m = g.m, call.n = g.n, call.k = g.k;
    call.ab_type = g.input == GemmInput::bf16 ? bf16_r : f16_r;
    call.lda = g.lda, call.ldb = g.ldb, call.ldc = g.ldc;
    call.beta = g.beta;
    return call;
}

}  // namespace runner::gpu
