// The BLAS path of matmul: activations converted to the weights' 16-bit type, one GEMM with f32
// accumulation, then the bias. Compiled to nothing but the fallbacks when the build has no BLAS.
#include "runner/backend/gpu/blas.h"

#if defined(OAR_GPU_BLAS) && defined(OAR_GPU_CUDA)
#include <cublas_v2.h>
#include <cuda_bf16.h>
#endif

namespace runner::gpu {

#if defined(OAR_GPU_BLAS) && defined(OAR_GPU_CUDA)

namespace {

#define BLAS_CHECK(call)                                                                                        \
    do {                                                                                                        \
        const cublasStatus_t blas_status_ = (call);                                                             \
        if (blas_status_ != CUBLAS_STATUS_SUCCESS)                                                              \
            throw Error(std::string(#call) + " failed at " + __FILE__ + ":" + std::to_string(__LINE__) + ": " + \
                        cublasGetStatusString(blas_status_));                                                   \
    } while (0)

__global__ void to_bf16_kernel(__nv_bfloat16* out, const float* x, std::size_t n) {
    const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __float2bfloat16_rn(x[i]);
}

// A quantized matrix widened to bf16 for the GEMM (a prompt's products reuse each weight across
// the micro-batch, so this one pass over the weights is cheap next to them).
__global__ void widen_kernel(__nv_bfloat16* out, const void* w, WeightType type, std::size_t d_out, std::size_t d_in) {
    const std::size_t at = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (at >= d_out * d_in) return;
    const float* scales = quant_scales(w, type, d_out, d_in);
    out[at] = __float2bfloat16_rn(weight_at(w, type, at / d_in, at % d_in, d_in, scales));
}

__global__ void add_bias_kernel(float* out, const void* bias, WeightType type, int d_out) {
    float* row = out + static_cast<std::size_t>(blockIdx.x) * d_out;
    for (int j = threadIdx.x; j < d_out; j += blockDim.x) row[j] += load_weight(bias, type, j);
}

}  // namespace

bool Blas::available() { return true; }

Blas::Blas(const Stream& stream, std::size_t max_elements, std::size_t max_weight_elements)
    : scratch_(max_elements * 2), weight_scratch_(max_weight_elements * 2) {
    cublasHandle_t h = nullptr;
    BLAS_CHECK(cublasCreate(&h));
    handle_.reset(h);
    BLAS_CHECK(cublasSetStream(h, native(stream)));
}

void BlasDestroy::operator()(void* h) const noexcept { (void)cublasDestroy(static_cast<cublasHandle_t>(h)); }

bool blas_matmul(float* out, const float* x, const void* w, WeightType type, const void* bias, WeightType bias_type,
                 int n_tokens, int d_in, int d_out, bool accumulate, const Stream& stream, const Blas& blas) {
    const std::size_t n = static_cast<std::size_t>(n_tokens) * d_in;
    const std::size_t weights = static_cast<std::size_t>(d_out) * d_in;
    if (type == WeightType::f32 || n > blas.max_elements()) return false;
    const bool widened = is_quantized(type) || is_ggml_block(type);
    if (widened && weights > blas.max_weight_elements()) return false;
    const cudaStream_t s = native(stream);
    if (widened) {
        widen_kernel<<<static_cast<unsigned>((weights + 255) / 256), 256, 0, s>>>(
            static_cast<__nv_bfloat16*>(blas.weight_scratch()), w, type, static_cast<std::size_t>(d_out),
            static_cast<std::size_t>(d_in));
        GPU_CHECK_LAUNCH();
        w = blas.weight_scratch();
        type = WeightType::bf16;
    }
    if (type == WeightType::bf16) {
        to_bf16_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, s>>>(
            static_cast<__nv_bfloat16*>(blas.scratch()), x, n);
        GPU_CHECK_LAUNCH();
    } else {
        to_f16(static_cast<unsigned short*>(blas.scratch()), x, n, s);
    }
    // Row-major out[n_tokens, d_out] is column-major out^T[d_out, n_tokens] = W[d_out, d_in] x^T.
    const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
    const cudaDataType_t t = type == WeightType::bf16 ? CUDA_R_16BF : CUDA_R_16F;
    BLAS_CHECK(cublasGemmEx(static_cast<cublasHandle_t>(blas.handle()), CUBLAS_OP_T, CUBLAS_OP_N, d_out, n_tokens, d_in,
                            &alpha, w, t, d_in, blas.scratch(), t, d_in, &beta, out, CUDA_R_32F, d_out,
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (bias) {
        add_bias_kernel<<<n_tokens, 256, 0, s>>>(out, bias, bias_type, d_out);
        GPU_CHECK_LAUNCH();
    }
    return true;
}

#else

bool Blas::available() { return false; }

Blas::Blas(const Stream&, std::size_t, std::size_t) {}

void BlasDestroy::operator()(void*) const noexcept {}

bool blas_matmul(float*, const float*, const void*, WeightType, const void*, WeightType, int, int, int, bool,
                 const Stream&, const Blas&) {
    return false;
}

#endif

}  // namespace runner::gpu
