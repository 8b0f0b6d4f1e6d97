// The BLAS path of matmul: activations converted to the weights' 16-bit type, one GEMM with f32
// accumulation (gemm.h's arguments, the same for both libraries), then the bias. cuBLAS where the CUDA
// build links it; on ROCm the rocBLAS that rocblas_choice finds at run time; otherwise nothing but the
// fallbacks, and matmul runs its own kernels.
#include <atomic>
#include <memory>

#include "runner/backend/gpu/blas.h"
#include "runner/backend/gpu/gemm.h"

#if defined(OAR_GPU_HIP)
#include "runner/backend/gpu/rocblas_choice.h"
#define OAR_HAVE_BLAS 1
#elif defined(OAR_GPU_BLAS)
#include <cublas_v2.h>
#define OAR_HAVE_BLAS 1
#endif

namespace runner::gpu {

namespace {

// Set when a known-answer check of the BLAS failed: matmul then runs its own kernels. One flag for the
// process, which runs its model on one GPU.
std::atomic<bool> blas_disabled{false};

}  // namespace

void set_blas_checked(bool passed) { blas_disabled = !passed; }

#if defined(OAR_HAVE_BLAS)

namespace {

// f32 to bf16 bits, rounded to nearest even; a NaN stays a (quiet) NaN.
__device__ inline unsigned short f32_to_bf16(float v) {
    const unsigned bits = __float_as_uint(v);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<unsigned short>((bits >> 16) | 0x40u);
    return static_cast<unsigned short>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

__global__ void to_bf16_kernel(unsigned short* out, const float* x, std::size_t n) {
    const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = f32_to_bf16(x[i]);
}

// A quantized matrix widened to bf16 for the GEMM (a prompt's products reuse each weight across
// the micro-batch, so this one pass over the weights is cheap next to them).
__global__ void widen_kernel(unsigned short* out, const void* w, WeightType type, std::size_t d_out, std::size_t d_in) {
    const std::size_t at = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (at >= d_out * d_in) return;
    const float* scales = quant_scales(w, type, d_out, d_in);
    out[at] = f32_to_bf16(weight_at(w, type, at / d_in, at % d_in, d_in, scales));
}

__global__ void add_bias_kernel(float* out, const void* bias, WeightType type, int d_out) {
    float* row = out + static_cast<std::size_t>(blockIdx.x) * d_out;
    for (int j = threadIdx.x; j < d_out; j += blockDim.x) row[j] += load_weight(bias, type, j);
}

#if defined(OAR_GPU_HIP)

const RocblasChoice& rocblas() {
    int index = 0;
    GPU_CHECK(hipGetDevice(&index));
    hipDeviceProp_t props{};
    GPU_CHECK(hipGetDeviceProperties(&props, index));
    return rocblas_for(props.gcnArchName);
}

// A rocBLAS handle with the library that made it, which destroys it: not the current device's choice,
// which may have changed by then.
struct RocblasHandle {
    std::shared_ptr<const common::RocblasLibrary> library;
    void* handle = nullptr;
};

void check_blas(const common::RocblasLibrary& library, int status, const char* what) {
    if (status != common::rocblas_abi::status_success)
        throw Error(std::string(what) + " failed: " + library.status_text(status));
}

#else

void check_blas(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS) throw Error(std::string(what) + " failed: " + cublasGetStatusString(status));
}

#endif

// out = W x16 (+ out), as gemm.h lays it out.
void issue(const Blas& blas, const MatmulGemm& g, const void* w, const void* x16, float* out) {
#if defined(OAR_GPU_HIP)
    const auto& h = *static_cast<const RocblasHandle*>(blas.handle());
    check_blas(*h.library, h.library->gemm(h.handle, to_rocblas(g), w, x16, out), "rocblas_gemm_ex");
#else
    const cudaDataType_t t = g.input == GemmInput::bf16 ? CUDA_R_16BF : CUDA_R_16F;
    const float alpha = 1.f;
    check_blas(cublasGemmEx(static_cast<cublasHandle_t>(blas.handle()), g.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                            g.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n, g.k, &alpha, w, t, g.lda, x16, t,
                            g.ldb, &g.beta, out, CUDA_R_32F, g.ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
#endif
}

}  // namespace

bool Blas::available() { return !blas_disabled && loaded(); }

bool Blas::loaded() {
#if defined(OAR_GPU_HIP)
    return rocblas().library != nullptr;
#else
    return true;
#endif
}

std::string Blas::library() {
#if defined(OAR_GPU_HIP)
    return rocblas().status;
#else
    // The linked library's version, without creating a handle (this runs at every load).
    int major = 0, minor = 0, patch = 0;
    (void)cublasGetProperty(MAJOR_VERSION, &major);
    (void)cublasGetProperty(MINOR_VERSION, &minor);
    (void)cublasGetProperty(PATCH_LEVEL, &patch);
    return "cuBLAS " + std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
#endif
}

std::string Blas::description() {
    return library() + (blas_disabled ? " (off: it failed its check on this device)" : "");
}

Blas::Blas(const Stream& stream, std::size_t max_elements, std::size_t max_weight_elements)
    : scratch_(max_elements * 2), weight_scratch_(max_weight_elements * 2) {
#if defined(OAR_GPU_HIP)
    // Without a rocBLAS for this device the handle stays empty and blas_matmul declines every product.
    auto library = rocblas().library;
    if (!library) return;
    auto h = std::make_unique<RocblasHandle>(RocblasHandle{library, nullptr});
    check_blas(*library, library->create_handle(&h->handle), "rocblas_create_handle");
    void* raw = h.release();
    handle_.reset(raw);
    check_blas(*library, library->set_stream(static_cast<RocblasHandle*>(raw)->handle, native(stream)),
               "rocblas_set_stream");
#else
    cublasHandle_t h = nullptr;
    check_blas(cublasCreate(&h), "cublasCreate");
    handle_.reset(h);
    check_blas(cublasSetStream(h, native(stream)), "cublasSetStream");
#endif
}

void BlasDestroy::operator()(void* h) const noexcept {
#if defined(OAR_GPU_HIP)
    const auto* owned = static_cast<RocblasHandle*>(h);
    if (owned->handle) (void)owned->library->destroy_handle(owned->handle);
    delete owned;
#else
    (void)cublasDestroy(static_cast<cublasHandle_t>(h));
#endif
}

bool blas_matmul(float* out, const float* x, const void* w, WeightType type, const void* bias, WeightType bias_type,
                 int n_tokens, int d_in, int d_out, bool accumulate, const Stream& stream, const Blas& blas) {
    const std::size_t n = static_cast<std::size_t>(n_tokens) * d_in;
    const std::size_t weights = static_cast<std::size_t>(d_out) * d_in;
    if (!blas.handle() || type == WeightType::f32 || n > blas.max_elements() || blas_disabled) return false;
    const bool widened = is_quantized(type) || is_ggml_block(type);
    if (widened && weights > blas.max_weight_elements()) return false;
    const cudaStream_t s = native(stream);
    if (widened) {
        widen_kernel<<<static_cast<unsigned>((weights + 255) / 256), 256, 0, s>>>(
            static_cast<unsigned short*>(blas.weight_scratch()), w, type, static_cast<std::size_t>(d_out),
            static_cast<std::size_t>(d_in));
        GPU_CHECK_LAUNCH();
        w = blas.weight_scratch();
        type = WeightType::bf16;
    }
    if (type == WeightType::bf16) {
        to_bf16_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, s>>>(
            static_cast<unsigned short*>(blas.scratch()), x, n);
        GPU_CHECK_LAUNCH();
    } else {
        to_f16(static_cast<unsigned short*>(blas.scratch()), x, n, s);
    }
    const auto input = type == WeightType::bf16 ? GemmInput::bf16 : GemmInput::f16;
    issue(blas, matmul_gemm(n_tokens, d_in, d_out, input, accumulate), w, blas.scratch(), out);
    if (bias) {
        add_bias_kernel<<<n_tokens, 256, 0, s>>>(out, bias, bias_type, d_out);
        GPU_CHECK_LAUNCH();
    }
    return true;
}

#else

bool Blas::available() { return false; }

bool Blas::loaded() { return false; }

std::string Blas::library() { return "none (this build has no BLAS)"; }

std::string Blas::description() { return library(); }

Blas::Blas(const Stream&, std::size_t, std::size_t) {}

void BlasDestroy::operator()(void*) const noexcept {}

bool blas_matmul(float*, const float*, const void*, WeightType, const void*, WeightType, int, int, int, bool,
                 const Stream&, const Blas&) {
    return false;
}

#endif

}  // namespace runner::gpu
