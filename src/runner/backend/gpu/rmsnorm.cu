#include "runner/backend/gpu/block_reduce.h"
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

// A normalized element as the output holds it: f32, or the 16 bits a BLAS product reads.
enum class Out { f32, bf16, f16 };

template <Out out_type>
__device__ inline void store(void* out, std::size_t i, float v) {
    if constexpr (out_type == Out::f32)
        static_cast<float*>(out)[i] = v;
    else
        static_cast<unsigned short*>(out)[i] = f32_to_16<out_type == Out::bf16>(v);
}

// One block per row.
template <Out out_type>
__global__ void rmsnorm_kernel(void* out, const float* x, const void* weight, WeightType type, int n, float eps) {
    const float* row = x + static_cast<std::size_t>(blockIdx.x) * n;
    const std::size_t first = static_cast<std::size_t>(blockIdx.x) * n;
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += row[i] * row[i];
    const float scale = rsqrtf(block_reduce<false>(ss) / n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        store<out_type>(out, first + i, row[i] * scale * load_weight(weight, type, i));
}

template <Out out_type>
void launch(void* out, const float* x, const void* weight, WeightType type, int n_rows, int n, float eps,
            cudaStream_t stream) {
    if (n_rows == 0) return;
    rmsnorm_kernel<out_type><<<n_rows, 256, 0, stream>>>(out, x, weight, type, n, eps);
    GPU_CHECK_LAUNCH();
}

}  // namespace

void rmsnorm(float* out, const float* x, const void* weight, WeightType type, int n_rows, int n, float eps,
             const Stream& stream) {
    launch<Out::f32>(out, x, weight, type, n_rows, n, eps, native(stream));
}

void rmsnorm_16(unsigned short* out, const float* x, const void* weight, WeightType type, int n_rows, int n, float eps,
                bool bf16, cudaStream_t stream) {
    (bf16 ? launch<Out::bf16> : launch<Out::f16>)(out, x, weight, type, n_rows, n, eps, stream);
}

}  // namespace runner::gpu
