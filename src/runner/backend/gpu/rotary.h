// Rotary embedding's arithmetic for one pair of a head's dimensions, and a cache element's store, shared by
// rope.cu's kernel and decode attention's RopeFirst, so that both write the same bits into the cache.
#pragma once

#include <cstddef>

#include "runner/backend/gpu/launch.h"

namespace runner::gpu {

#if defined(__CUDACC__) || defined(__HIPCC__)
struct RotaryPair {
    int first, second;  // the dimensions frequency i turns
    float cos, sin;
};

// Frequency i of a head of head_dim dimensions at position `pos`: the pair (i, i + head_dim / 2), or (2i, 2i + 1)
// with `adjacent`.
__device__ inline RotaryPair rotary_pair(int i, int head_dim, int pos, const float* inv_freq, bool adjacent) {
    RotaryPair r;
    sincosf(static_cast<float>(pos) * inv_freq[i], &r.sin, &r.cos);
    r.first = adjacent ? 2 * i : i, r.second = adjacent ? 2 * i + 1 : i + head_dim / 2;
    return r;
}

// A cache element from f32: as it is, or rounded to f16.
__device__ inline void store_kv(float* cache, std::size_t i, float v) { cache[i] = v; }
__device__ inline void store_kv(unsigned short* cache, std::size_t i, float v) { cache[i] = f32_to_f16(v); }

// x[first] and x[second] turned: the new first, then the new second. The roundings are spelled out, as the
// compiler might otherwise fuse a different product in each kernel that inlines this.
__device__ inline float2 rotate(const RotaryPair& r, float a, float b) {
    return make_float2(__fmaf_rn(a, r.cos, -__fmul_rn(b, r.sin)), __fmaf_rn(b, r.cos, __fmul_rn(a, r.sin)));
}
#endif

}  // namespace runner::gpu
