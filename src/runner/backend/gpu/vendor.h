// The one place that knows which GPU vendor we compile for. Kernels are written in CUDA's dialect;
// under hipcc (ROCm) the runtime names map to HIP's, the way ggml-cuda's vendors/hip.h does it.
// Kernels read BF16/F16 weights as raw 16-bit words and widen them in registers, so no vendor's
// half-precision types appear in their signatures.
#pragma once

#if defined(__HIP_PLATFORM_AMD__) || defined(__HIPCC__)
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>

#define OAR_GPU_HIP 1
#define cudaError_t hipError_t
#define cudaSuccess hipSuccess
#define cudaGetErrorString hipGetErrorString
#define cudaGetLastError hipGetLastError
#define cudaStream_t hipStream_t
#define cudaEvent_t hipEvent_t
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamNonBlocking hipStreamNonBlocking
#define cudaStreamDestroy hipStreamDestroy
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaStreamWaitEvent hipStreamWaitEvent
#define cudaEventCreateWithFlags hipEventCreateWithFlags
#define cudaEventDisableTiming hipEventDisableTiming
#define cudaEventDefault hipEventDefault
#define cudaEventRecord hipEventRecord
#define cudaEventSynchronize hipEventSynchronize
#define cudaEventQuery hipEventQuery
#define cudaErrorNotReady hipErrorNotReady
#define cudaEventElapsedTime hipEventElapsedTime
#define cudaEventDestroy hipEventDestroy
#define cudaMalloc hipMalloc
#define cudaFree hipFree
#define cudaMallocHost(p, n) hipHostMalloc(p, n, hipHostMallocDefault)
#define cudaFreeHost hipHostFree
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define cudaMemGetInfo hipMemGetInfo
#define cudaSetDevice hipSetDevice
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaDeviceProp hipDeviceProp_t
#define cudaDriverGetVersion hipDriverGetVersion
#define cudaDeviceGetPCIBusId hipDeviceGetPCIBusId
#define cudaRuntimeGetVersion hipRuntimeGetVersion
#else
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define OAR_GPU_CUDA 1
#endif

namespace runner::gpu {

// Threads that execute in lockstep: 32 on NVIDIA and RDNA (wave32), 64 on CDNA (wave64). Reductions
// below use it only through warp_sum/warp_max, which loop over it.
#if defined(OAR_GPU_HIP) && defined(__AMDGCN_WAVEFRONT_SIZE)
constexpr int warp_size = __AMDGCN_WAVEFRONT_SIZE;
#else
constexpr int warp_size = 32;
#endif

#if defined(__CUDACC__) || defined(__HIPCC__)
// v from the lane whose index differs from this one's in the bits of `mask`.
__device__ inline float shfl_xor(float v, int mask) {
#if defined(OAR_GPU_HIP)
    return __shfl_xor(v, mask, warp_size);
#else
    return __shfl_xor_sync(0xffffffffu, v, mask, warp_size);
#endif
}

__device__ inline float warp_sum(float v) {
    for (int offset = warp_size / 2; offset > 0; offset /= 2) v += shfl_xor(v, offset);
    return v;
}

__device__ inline float warp_max(float v) {
    for (int offset = warp_size / 2; offset > 0; offset /= 2) v = fmaxf(v, shfl_xor(v, offset));
    return v;
}

// Over the four lanes 4k .. 4k + 3.
__device__ inline float quad_sum(float v) {
    v += shfl_xor(v, 1);
    return v + shfl_xor(v, 2);
}

__device__ inline float quad_max(float v) {
    v = fmaxf(v, shfl_xor(v, 1));
    return fmaxf(v, shfl_xor(v, 2));
}

// BF16 is the top half of an f32.
__device__ inline float bf16_to_f32(unsigned short h) { return __uint_as_float(static_cast<unsigned>(h) << 16); }

// IEEE half as its 16 bits: both vendors' fp16 headers spell these conversions alike.
__device__ inline float f16_to_f32(unsigned short h) { return __half2float(__ushort_as_half(h)); }
__device__ inline unsigned short f32_to_f16(float v) { return __half_as_ushort(__float2half_rn(v)); }
#endif

}  // namespace runner::gpu
