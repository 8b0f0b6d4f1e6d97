// ggml's block-quantized weights (GGUF's Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) read in place on the GPU: element
// `at` of a matrix whose rows are runs of blocks (a row's length is a multiple of the block's), as
// backend/cpu/block_quants.cpp widens them on the host. Blocks are only 2-byte aligned (34 and 210 bytes),
// so everything is read in bytes and halves.
#pragma once

#include "runner/backend/gpu/vendor.h"
#include "runner/model/weight_format.h"

namespace runner::gpu {

#if defined(__CUDACC__) || defined(__HIPCC__)

__device__ inline float half_at(const unsigned char* p) {
    return f16_to_f32(*reinterpret_cast<const unsigned short*>(p));
}

// A K-quant's 6-bit scale and minimum of sub-block j (of 8), packed into 12 bytes.
__device__ inline void scale_min_k4(int j, const unsigned char* s, float& scale, float& min) {
    if (j < 4) {
        scale = static_cast<float>(s[j] & 63);
        min = static_cast<float>(s[j + 4] & 63);
    } else {
        scale = static_cast<float>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        min = static_cast<float>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// Weight p (0..255) of a Q4_K or Q5_K block: each 64 weights are two sub-blocks of 32, the low nibbles of
// 32 bytes and then their high nibbles; Q5_K's fifth bit of sub-block s is bit s of 32 bytes of high bits.
template <bool five_bits>
__device__ inline float k_weight(const unsigned char* b, int p) {
    const int sub = p / 32, l = p % 32;
    float scale, min;
    scale_min_k4(sub, b + 4, scale, min);
    const unsigned char* q = b + (five_bits ? 48 : 16) + 32 * (p / 64);
    int v = (sub % 2 == 0) ? (q[l] & 0xF) : (q[l] >> 4);
    if (five_bits && (b[16 + l] >> sub) & 1) v += 16;
    return half_at(b) * scale * static_cast<float>(v) - half_at(b + 2) * min;
}

// Weight p (0..255) of a Q6_K block: per half of 128, 64 bytes of low nibbles and 32 of high bit pairs,
// four groups of 32 interleaved through them; 16 int8 scales of 16 weights; quants stored + 32.
__device__ inline float q6_k_weight(const unsigned char* b, int p) {
    const int half = p / 128, g = (p % 128) / 32, l = p % 32;
    const unsigned char* ql = b + 64 * half;
    const unsigned char* qh = b + 128 + 32 * half;
    const auto* sc = reinterpret_cast<const signed char*>(b + 192) + 8 * half;
    const int low = (g % 2 == 0 ? ql[l] : ql[l + 32]) >> (g >= 2 ? 4 : 0) & 0xF;
    const int q = (low | (((qh[l] >> (2 * g)) & 3) << 4)) - 32;
    return half_at(b + 208) * static_cast<float>(sc[l / 16 + 2 * g]) * static_cast<float>(q);
}

// Element `at` (a flat index over the matrix's rows) of a matrix of ggml blocks.
__device__ inline float ggml_weight(const void* w, WeightType type, std::size_t at) {
    const auto* base = static_cast<const unsigned char*>(w);
    switch (type) {
        case WeightType::q8_0: {
            const unsigned char* b = base + at / 32 * 34;
            return half_at(b) * static_cast<float>(reinterpret_cast<const signed char*>(b + 2)[at % 32]);
        }
        case WeightType::q4_0: {
            const unsigned char* b = base + at / 32 * 18;
            const int p = static_cast<int>(at % 32);
            const int q = p < 16 ? (b[2 + p] & 0xF) : (b[2 + p - 16] >> 4);
            return half_at(b) * static_cast<float>(q - 8);
        }
        case WeightType::q4_k: return k_weight<false>(base + at / 256 * 144, static_cast<int>(at % 256));
        case WeightType::q5_k: return k_weight<true>(base + at / 256 * 176, static_cast<int>(at % 256));
        case WeightType::q6_k: return q6_k_weight(base + at / 256 * 210, static_cast<int>(at % 256));
        default: return 0.f;
    }
}

#endif

}  // namespace runner::gpu
