// Sum and max over a thread block, through warp shuffles and one shared slot per warp.
#pragma once

#include "runner/backend/gpu/vendor.h"

namespace runner::gpu {

#if defined(__CUDACC__) || defined(__HIPCC__)
// Every thread of the block must call it; every thread gets the result.
template <bool is_max>
__device__ inline float block_reduce(float v) {
    __shared__ float partial[1024 / warp_size];
    __shared__ float result;
    v = is_max ? warp_max(v) : warp_sum(v);
    const int lane = threadIdx.x % warp_size, warp = threadIdx.x / warp_size;
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        const int n_warps = (blockDim.x + warp_size - 1) / warp_size;
        float w = lane < n_warps ? partial[lane] : (is_max ? -INFINITY : 0.f);
        w = is_max ? warp_max(w) : warp_sum(w);
        if (lane == 0) result = w;
    }
    __syncthreads();
    const float out = result;
    __syncthreads();  // the slots are reused by the next call
    return out;
}
#endif

}  // namespace runner::gpu
