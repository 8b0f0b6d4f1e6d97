// Steps that touch each element once: SwiGLU for passes too long for norm_matmul_swiglu's fused kernel (in
// f32, or as the BLAS's 16-bit input to down), the host's share of a split layer added into the residual,
// and the f32 -> 16-bit rounding of the BLAS's inputs.
#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

namespace {

constexpr int threads = 256;

unsigned blocks_for(std::size_t n) { return static_cast<unsigned>((n + threads - 1) / threads); }

__device__ inline float silu_times(float g, float u) { return g / (1.f + expf(-g)) * u; }

__global__ void swiglu_kernel(float* gate, const float* up, std::size_t n) {
    const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) gate[i] = silu_times(gate[i], up[i]);
}

// Four elements a thread, with 16-byte loads where the pointers allow: a 4-byte load a thread kept under
// half of HBM's bandwidth in flight (2.2 TB/s on an H200) over a prompt's 4096 x 14336 activations.
template <bool bf16>
__global__ void swiglu_16_kernel(unsigned short* out, const float* gate, const float* up, std::size_t n) {
    const std::size_t i = 4 * (static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x);
    const bool wide = (reinterpret_cast<std::uintptr_t>(gate) | reinterpret_cast<std::uintptr_t>(up)) % 16 == 0 &&
                      reinterpret_cast<std::uintptr_t>(out) % 8 == 0;
    if (wide && i + 4 <= n) {
        const float4 g = *reinterpret_cast<const float4*>(gate + i), u = *reinterpret_cast<const float4*>(up + i);
        *reinterpret_cast<ushort4*>(out + i) =
            ushort4{f32_to_16<bf16>(silu_times(g.x, u.x)), f32_to_16<bf16>(silu_times(g.y, u.y)),
                    f32_to_16<bf16>(silu_times(g.z, u.z)), f32_to_16<bf16>(silu_times(g.w, u.w))};
        return;
    }
    for (std::size_t k = i; k < n && k < i + 4; ++k) out[k] = f32_to_16<bf16>(silu_times(gate[k], up[k]));
}

__global__ void add_kernel(float* x, const float* y, std::size_t n) {
    const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

template <bool bf16>
__global__ void to_16_kernel(unsigned short* dst, const float* src, std::size_t n) {
    const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = f32_to_16<bf16>(src[i]);
}

}  // namespace

void to_16(unsigned short* dst, const float* src, std::size_t n, bool bf16, cudaStream_t stream) {
    if (n == 0) return;
    (bf16 ? to_16_kernel<true> : to_16_kernel<false>)<<<blocks_for(n), threads, 0, stream>>>(dst, src, n);
    GPU_CHECK_LAUNCH();
}

void swiglu(float* gate, const float* up, std::size_t n, const Stream& stream) {
    if (n == 0) return;
    swiglu_kernel<<<blocks_for(n), threads, 0, native(stream)>>>(gate, up, n);
    GPU_CHECK_LAUNCH();
}

void swiglu_16(unsigned short* out, const float* gate, const float* up, std::size_t n, bool bf16, cudaStream_t stream) {
    if (n == 0) return;
    (bf16 ? swiglu_16_kernel<true> : swiglu_16_kernel<false>)<<<blocks_for((n + 3) / 4), threads, 0, stream>>>(
        out, gate, up, n);
    GPU_CHECK_LAUNCH();
}

void add(float* x, const float* y, std::size_t n, const Stream& stream) {
    if (n == 0) return;
    add_kernel<<<blocks_for(n), threads, 0, native(stream)>>>(x, y, n);
    GPU_CHECK_LAUNCH();
}

}  // namespace runner::gpu
