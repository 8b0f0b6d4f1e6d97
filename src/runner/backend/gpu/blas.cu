// The BLAS path of matmul: activations converted to the weights' 16-bit type, one GEMM with f32
// accumulation (gemm.h's arguments, the same for both libraries), then the bias. cuBLAS where the CUDA
// build links it; on ROCm the rocBLAS that rocblas_choice finds at run time; otherwise nothing but the
// fallbacks, and matmul runs its own kernels.
#include <atomic>
#include <memory>
#include <vector>

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

namespace {

// The BLAS input's type for weights of `type`: f16 weights take f16 activations, every other type bf16 (quantized
// weights are widened to bf16).
GemmInput input_for(WeightType type) { return type == WeightType::f16 ? GemmInput::f16 : GemmInput::bf16; }

// Whether a product of these weights over n_tokens x d_in activations is one for the BLAS: not f32 weights, its
// activations (and widened weights) within the scratches, the BLAS loaded and not failed.
bool takes(const Blas& blas, WeightType type, int n_tokens, int d_in, int d_out) {
    const std::size_t weights = static_cast<std::size_t>(d_out) * d_in;
    const bool widened = is_quantized(type) || is_ggml_block(type);
    return blas.handle() && type != WeightType::f32 && !blas_disabled &&
           static_cast<std::size_t>(n_tokens) * d_in <= blas.max_elements() &&
           (!widened || weights <= blas.max_weight_elements());
}

// out = W . x16, 16-bit activations already in the BLAS's scratch (+ bias; + out with `accumulate`), quantized
// weights widened to bf16 first.
void gemm_16(const Product& p, const unsigned short* x16, int n_tokens, int d_in, bool accumulate, cudaStream_t s,
             const Blas& blas) {
    const void* w = p.w;
    if (is_quantized(p.type) || is_ggml_block(p.type)) {
        const std::size_t weights = static_cast<std::size_t>(p.d_out) * d_in;
        widen_kernel<<<static_cast<unsigned>((weights + 255) / 256), 256, 0, s>>>(
            static_cast<unsigned short*>(blas.weight_scratch()), p.w, p.type, static_cast<std::size_t>(p.d_out),
            static_cast<std::size_t>(d_in));
        GPU_CHECK_LAUNCH();
        w = blas.weight_scratch();
    }
    issue(blas, matmul_gemm(n_tokens, d_in, p.d_out, input_for(p.type), accumulate), w, x16, p.out);
    if (p.bias) {
        add_bias_kernel<<<n_tokens, 256, 0, s>>>(p.out, p.bias, p.bias_type, p.d_out);
        GPU_CHECK_LAUNCH();
    }
}

}  // namespace

bool blas_matmul(float* out, const float* x, const void* w, WeightType type, const void* bias, WeightType bias_type,
                 int n_tokens, int d_in, int d_out, bool accumulate, const Stream& stream, const Blas& blas) {
    if (!takes(blas, type, n_tokens, d_in, d_out)) return false;
    const cudaStream_t s = native(stream);
    auto* x16 = static_cast<unsigned short*>(blas.scratch());
    to_16(x16, x, static_cast<std::size_t>(n_tokens) * d_in, input_for(type) == GemmInput::bf16, s);
    gemm_16(Product{out, w, type, d_out, bias, bias_type}, x16, n_tokens, d_in, accumulate, s, blas);
    return true;
}

bool blas_norm_matmul(std::span<const Product> products, const float* x, const Norm& norm, int n_tokens, int d_in,
                      const Stream& stream, const Blas& blas) {
    if (products.empty()) return false;
    const GemmInput input = input_for(products[0].type);
    for (const auto& p : products)
        if (!takes(blas, p.type, n_tokens, d_in, p.d_out) || input_for(p.type) != input) return false;
    const cudaStream_t s = native(stream);
    auto* x16 = static_cast<unsigned short*>(blas.scratch());
    rmsnorm_16(x16, x, norm.weight, norm.type, n_tokens, d_in, norm.eps, input == GemmInput::bf16, s);
    for (const auto& p : products) gemm_16(p, x16, n_tokens, d_in, false, s, blas);
    return true;
}

bool blas_norm_mlp(float* x, const Norm& norm, std::span<const MlpBlock> blocks, WeightType gate_up_type,
                   WeightType down_type, float* gate, float* up, int n_tokens, int d_in, const Stream& stream,
                   const Blas& blas) {
    std::vector<Product> gate_up;
    std::size_t offset = 0;
    for (const auto& b : blocks) {
        if (!takes(blas, down_type, n_tokens, b.rows, d_in)) return false;
        gate_up.push_back({gate + offset, b.gate, gate_up_type, b.rows});
        gate_up.push_back({up + offset, b.up, gate_up_type, b.rows});
        offset += static_cast<std::size_t>(n_tokens) * b.rows;
    }
    const GemmInput input = input_for(gate_up_type);
    if (input_for(down_type) != input || offset > blas.max_elements() ||
        !blas_norm_matmul(gate_up, x, norm, n_tokens, d_in, stream, blas))
        return false;
    // Every gate and up product has read the norm: the scratch takes down's inputs, block after block.
    const cudaStream_t s = native(stream);
    auto* x16 = static_cast<unsigned short*>(blas.scratch());
    offset = 0;
    for (const auto& b : blocks) {
        const std::size_t n = static_cast<std::size_t>(n_tokens) * b.rows;
        swiglu_16(x16 + offset, gate + offset, up + offset, n, input == GemmInput::bf16, s);
        gemm_16({x, b.down, down_type, d_in}, x16 + offset, n_tokens, b.rows, true, s, blas);
        offset += n;
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

bool blas_norm_matmul(std::span<const Product>, const float*, const Norm&, int, int, const Stream&, const Blas&) {
    return false;
}

bool blas_norm_mlp(float*, const Norm&, std::span<const MlpBlock>, WeightType, WeightType, float*, float*, int, int,
                   const Stream&, const Blas&) {
    return false;
}

#endif

}  // namespace runner::gpu
