// What the kernel files share: the stream handle, f32 -> f16 conversion, and reading a weight element of
// any stored dtype.
#pragma once

#include "runner/backend/gpu/backend.h"
#include "runner/backend/gpu/check.h"
#include "runner/backend/gpu/ggml_blocks.h"
#include "runner/backend/gpu/vendor.h"

namespace runner::gpu {

inline cudaStream_t native(const Stream& s) { return static_cast<cudaStream_t>(s.handle()); }

// Whether a kernel launched now with launch_overlapped may start while the stream's previous kernel
// finishes (graph.cu): while a Graph records on this thread, on a GPU with programmatic dependent launch.
// Only there: a recorded step's weights stay in place for the engine's life, where a streamed layer's
// arrive by copies that a read ahead of wait_for_previous_kernel need not wait for.
bool overlap_launches();

#if defined(__CUDACC__) || defined(__HIPCC__)
// kernel<<<grid, block, 0, s>>>(args...), where overlap_launches() as a programmatic dependent launch:
// the kernel's blocks take the SMs the previous kernel's last wave leaves idle and start reading their
// weights, instead of the GPU draining between two launches. The kernel follows vendor.h's
// wait_for_previous_kernel rule.
template <class... Params, class... Args>
void launch_overlapped(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t s, const Args&... args) {
#if defined(OAR_GPU_CUDA)
    if (overlap_launches()) {
        cudaLaunchAttribute overlap{};
        overlap.id = cudaLaunchAttributeProgrammaticStreamSerialization;
        overlap.val.programmaticStreamSerializationAllowed = 1;
        cudaLaunchConfig_t config{};
        config.gridDim = grid;
        config.blockDim = block;
        config.stream = s;
        config.attrs = &overlap;
        config.numAttrs = 1;
        GPU_CHECK(cudaLaunchKernelEx(&config, kernel, args...));
        return;
    }
#endif
    kernel<<<grid, block, 0, s>>>(args...);
}
#endif

// dst[i] = src[i] rounded to the BLAS's 16-bit input (elementwise.cu): bf16, or f16 where `bf16` is false.
void to_16(unsigned short* dst, const float* src, std::size_t n, bool bf16, cudaStream_t stream);

// rmsnorm (rmsnorm.cu) written as the BLAS's 16-bit input: bf16, or f16 where `bf16` is false.
void rmsnorm_16(unsigned short* out, const float* x, const void* weight, WeightType type, int n_rows, int n, float eps,
                bool bf16, cudaStream_t stream);

// out[i] = silu(gate[i]) * up[i] (elementwise.cu) as the BLAS's 16-bit input: bf16, or f16 where `bf16` is false.
void swiglu_16(unsigned short* out, const float* gate, const float* up, std::size_t n, bool bf16, cudaStream_t stream);

#if defined(__CUDACC__) || defined(__HIPCC__)
__device__ inline float load_weight(const void* w, WeightType type, std::size_t i) {
    switch (type) {
        case WeightType::bf16: return bf16_to_f32(static_cast<const unsigned short*>(w)[i]);
        case WeightType::f16: return f16_to_f32(static_cast<const unsigned short*>(w)[i]);
        default: return static_cast<const float*>(w)[i];
    }
}

// Row `key` of a layer's keys (`keys`) or values, of element type T (const for reading): near in VRAM, or
// with `reaches_far` past near_rows in the cache's far part. `stride`: elements per row.
template <class T, bool reaches_far = true>
__device__ inline T* cache_row(const KvRows& cache, bool keys, int key, std::size_t stride) {
    if (reaches_far && key >= cache.near_rows)
        return static_cast<T*>(keys ? cache.k_far : cache.v_far) +
               static_cast<std::size_t>(key - cache.near_rows) * stride;
    return static_cast<T*>(keys ? cache.k : cache.v) + static_cast<std::size_t>(key) * stride;
}

// The scales of a quantized matrix (see quant_scales_offset); nullptr for other types.
__device__ inline const float* quant_scales(const void* w, WeightType type, std::size_t d_out, std::size_t d_in) {
    return is_quantized(type)
               ? reinterpret_cast<const float*>(static_cast<const char*>(w) + quant_scales_offset(type, d_out, d_in))
               : nullptr;
}

// Element [j, i] of a weight matrix [d_out, d_in] of any type; `scales` from quant_scales.
__device__ inline float weight_at(const void* w, WeightType type, std::size_t j, std::size_t i, std::size_t d_in,
                                  const float* scales) {
    const std::size_t at = j * d_in + i;
    if (is_ggml_block(type)) return ggml_weight(w, type, at);
    if (type == WeightType::q8)
        return static_cast<float>(static_cast<const signed char*>(w)[at]) * scales[at / quant_block];
    if (type == WeightType::q4) {
        const unsigned byte = static_cast<const unsigned char*>(w)[at / 2];
        return static_cast<float>(static_cast<int>((at % 2 == 0) ? byte & 0xfu : byte >> 4) - 8) *
               scales[at / quant_block];
    }
    return load_weight(w, type, at);
}
#endif

}  // namespace runner::gpu
