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
#define cudaMemsetAsync hipMemsetAsync
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
#define cudaGraph_t hipGraph_t
#define cudaGraphExec_t hipGraphExec_t
#define cudaStreamBeginCapture hipStreamBeginCapture
#define cudaStreamCaptureModeThreadLocal hipStreamCaptureModeThreadLocal
#define cudaStreamEndCapture hipStreamEndCapture
#define cudaGraphInstantiateWithFlags hipGraphInstantiateWithFlags
#define cudaGraphLaunch hipGraphLaunch
#define cudaGraphDestroy hipGraphDestroy
#define cudaGraphExecDestroy hipGraphExecDestroy
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

// v from lane `src` of the warp.
__device__ inline float shfl_from(float v, int src) {
#if defined(OAR_GPU_HIP)
    return __shfl(v, src, warp_size);
#else
    return __shfl_sync(0xffffffffu, v, src, warp_size);
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

// 16 bytes from global into shared memory. Where `async_copies` (NVIDIA sm_80 and later: cp.async) they
// are not held in registers on the way, so a warp can keep a chunk's copies in flight while it computes
// the last one: they count in the group that copy_commit closes, and copy_wait<N> returns once at most the
// N newest groups are pending. Elsewhere a plain copy, done when it returns. Either way another lane reads
// the data only after copy_wait and warp_sync.
#if defined(OAR_GPU_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define OAR_ASYNC_COPIES 1
constexpr bool async_copies = true;
#else
constexpr bool async_copies = false;
#endif

__device__ inline void copy_async_16(void* to_shared, const void* from_global) {
#if defined(OAR_ASYNC_COPIES)
    asm volatile(
        "cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(static_cast<unsigned>(__cvta_generic_to_shared(to_shared))),
        "l"(from_global)
        : "memory");
#else
    *static_cast<int4*>(to_shared) = *static_cast<const int4*>(from_global);
#endif
}

__device__ inline void copy_commit() {
#if defined(OAR_ASYNC_COPIES)
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

template <int N>
__device__ inline void copy_wait() {
#if defined(OAR_ASYNC_COPIES)
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// Programmatic dependent launch (NVIDIA sm_90 and later; launch.h's launch_overlapped): a kernel launched
// that way may start while the stream's previous kernel is still running, once every block of that one has
// called let_next_kernel_start. It must call wait_for_previous_kernel before it reads what an earlier kernel
// wrote or writes anything; what no kernel writes (weights) it may read before. Elsewhere kernels run one
// after the other and both are no-ops.
__device__ inline void wait_for_previous_kernel() {
#if defined(OAR_GPU_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ inline void let_next_kernel_start() {
#if defined(OAR_GPU_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// The warp's shared-memory writes so far visible to its other lanes.
__device__ inline void warp_sync() {
#if defined(OAR_GPU_HIP)
    __builtin_amdgcn_fence(__ATOMIC_RELEASE, "wavefront");
    __builtin_amdgcn_wave_barrier();
    __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "wavefront");
#else
    __syncwarp();
#endif
}

// BF16 is the top half of an f32.
__device__ inline float bf16_to_f32(unsigned short h) { return __uint_as_float(static_cast<unsigned>(h) << 16); }

// f32 to bf16 bits, rounded to nearest even; a NaN stays a (quiet) NaN.
__device__ inline unsigned short f32_to_bf16(float v) {
    const unsigned bits = __float_as_uint(v);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<unsigned short>((bits >> 16) | 0x40u);
    return static_cast<unsigned short>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// IEEE half as its 16 bits: both vendors' fp16 headers spell these conversions alike.
__device__ inline float f16_to_f32(unsigned short h) { return __half2float(__ushort_as_half(h)); }
__device__ inline unsigned short f32_to_f16(float v) { return __half_as_ushort(__float2half_rn(v)); }

// f32 as a BLAS product's 16-bit input: bf16, or IEEE half where `bf16` is false.
template <bool bf16>
__device__ inline unsigned short f32_to_16(float v) {
    return bf16 ? f32_to_bf16(v) : f32_to_f16(v);
}

// c + the sum of the products of a's and b's four signed bytes: the int8 decode kernels' inner product,
// one instruction where the GPU has it. RDNA3 dropped RDNA2's and CDNA's v_dot4_i32_i8 for
// v_dot4_i32_iu8, whose flags say both operands are signed; compilers older than the GPU get the bytes.
__device__ inline int dot4(int a, int b, int c) {
#if defined(OAR_GPU_CUDA)
    return __dp4a(a, b, c);
#elif (defined(__gfx1100__) || defined(__gfx1101__) || defined(__gfx1102__) || defined(__gfx1103__) ||  \
       defined(__gfx1150__) || defined(__gfx1151__) || defined(__gfx1200__) || defined(__gfx1201__)) && \
    __has_builtin(__builtin_amdgcn_sudot4)
    return __builtin_amdgcn_sudot4(true, a, true, b, c, false);
#elif (defined(__gfx906__) || defined(__gfx908__) || defined(__gfx90a__) || defined(__gfx942__) ||     \
       defined(__gfx1030__) || defined(__gfx1031__) || defined(__gfx1032__) || defined(__gfx1034__) || \
       defined(__gfx1035__)) &&                                                                        \
    __has_builtin(__builtin_amdgcn_sdot4)
    return __builtin_amdgcn_sdot4(a, b, c, false);
#else
    for (int k = 0; k < 4; ++k)
        c += static_cast<signed char>(static_cast<unsigned>(a) >> (8 * k)) *
             static_cast<signed char>(static_cast<unsigned>(b) >> (8 * k));
    return c;
#endif
}
#endif

}  // namespace runner::gpu
