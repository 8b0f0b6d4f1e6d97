// ggml's block-quantized weights (GGUF's Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) read in place by the GPU kernels:
// an element (the tiled prompt kernel, the BLAS's bf16 widening) or a chunk of 8 consecutive weights that
// share one scale (the matrix-vector kernel), from a matrix whose rows are runs of blocks. Plain C++ that
// compiles for the host too, so that CI checks it against gguf's dequantization without a GPU
// (tests/runner/backend/gpu/test_ggml_blocks.cpp). Blocks are only 2-byte aligned (34 and 210 bytes), so
// scales and quants are read in bytes.
#pragma once

#include <cstddef>
#include <cstring>

#include "runner/model/weight_format.h"

#if defined(__CUDACC__) || defined(__HIPCC__)
#define OAR_HOST_DEVICE __host__ __device__
#else
#define OAR_HOST_DEVICE
#endif

namespace runner::gpu {

OAR_HOST_DEVICE inline float half_at(const unsigned char* p) {
    const unsigned h = p[0] | (static_cast<unsigned>(p[1]) << 8);
    const unsigned sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0) {
        const float f = static_cast<float>(mant) * (1.f / 16777216.f);  // subnormal: mant * 2^-24
        return sign ? -f : f;
    }
    const unsigned bits = sign | (exp == 31 ? 0x7f800000u | (mant << 13) : ((exp + 112) << 23) | (mant << 13));
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

// A K-quant's 6-bit scale and minimum of sub-block j (of 8), packed into 12 bytes.
OAR_HOST_DEVICE inline void scale_min_k4(int j, const unsigned char* s, float& scale, float& min) {
    if (j < 4) {
        scale = static_cast<float>(s[j] & 63);
        min = static_cast<float>(s[j + 4] & 63);
    } else {
        scale = static_cast<float>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        min = static_cast<float>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// 8 consecutive weights of a block, as the matrix-vector kernel widens them: weight k is
// scale * q_k - min, q_k being, by type, a signed byte of `words` (Q8_0; Q6_K less its 32), a nibble
// less 8 (Q4_0, as our q4), a nibble (Q4_K) or an unsigned byte (Q5_K).
struct GgmlChunk {
    unsigned words[2] = {0, 0};
    float scale = 0.f, min = 0.f;
};

OAR_HOST_DEVICE inline unsigned nibbles8(const unsigned char* q, int shift) {
    unsigned word = 0;
    for (int k = 0; k < 8; ++k) word |= ((static_cast<unsigned>(q[k]) >> shift) & 0xfu) << (4 * k);
    return word;
}

// The chunk at flat index `at` (a multiple of 8) of a matrix of `type`'s blocks.
OAR_HOST_DEVICE inline GgmlChunk ggml_chunk(WeightType type, const void* w, std::size_t at) {
    const auto* base = static_cast<const unsigned char*>(w);
    GgmlChunk c;
    switch (type) {
        case WeightType::q8_0: {
            const unsigned char* b = base + at / 32 * 34;
            const unsigned char* q = b + 2 + at % 32;
            c.scale = half_at(b);
            for (int k = 0; k < 8; ++k) c.words[k / 4] |= static_cast<unsigned>(q[k]) << (8 * (k % 4));
            break;
        }
        case WeightType::q4_0: {
            const unsigned char* b = base + at / 32 * 18;
            const int within = static_cast<int>(at % 32);
            c.scale = half_at(b);
            c.words[0] = nibbles8(b + 2 + within % 16, within < 16 ? 0 : 4);
            break;
        }
        case WeightType::q4_k:
        case WeightType::q5_k: {
            const bool five = type == WeightType::q5_k;
            const unsigned char* b = base + at / 256 * (five ? 176 : 144);
            const int p = static_cast<int>(at % 256), sub = p / 32, l = p % 32, shift = sub % 2 ? 4 : 0;
            float s, m;
            scale_min_k4(sub, b + 4, s, m);
            c.scale = half_at(b) * s;
            c.min = half_at(b + 2) * m;
            const unsigned char* q = b + (five ? 48 : 16) + 32 * (p / 64) + l;
            if (!five) {
                c.words[0] = nibbles8(q, shift);
                break;
            }
            const unsigned char* qh = b + 16 + l;
            for (int k = 0; k < 8; ++k) {
                const unsigned v = ((static_cast<unsigned>(q[k]) >> shift) & 0xfu) | (((qh[k] >> sub) & 1u) << 4);
                c.words[k / 4] |= v << (8 * (k % 4));
            }
            break;
        }
        case WeightType::q6_k: {
            const unsigned char* b = base + at / 256 * 210;
            const int p = static_cast<int>(at % 256), half = p / 128, g = (p % 128) / 32, l = p % 32;
            const unsigned char* ql = b + 64 * half + (g % 2 ? 32 : 0) + l;
            const unsigned char* qh = b + 128 + 32 * half + l;
            const auto scale = static_cast<signed char>(b[192 + 8 * half + l / 16 + 2 * g]);
            c.scale = half_at(b + 208) * static_cast<float>(scale);
            for (int k = 0; k < 8; ++k) {
                const int v = static_cast<int>(((static_cast<unsigned>(ql[k]) >> (g >= 2 ? 4 : 0)) & 0xfu) |
                                               (((qh[k] >> (2 * g)) & 3u) << 4)) -
                              32;
                c.words[k / 4] |= (static_cast<unsigned>(v) & 0xffu) << (8 * (k % 4));
            }
            break;
        }
        default: break;
    }
    return c;
}

// Quant k of a chunk as a number, before scale and minimum (what the kernel's widening computes).
OAR_HOST_DEVICE inline float ggml_chunk_quant(WeightType type, const GgmlChunk& c, int k) {
    const unsigned byte = (c.words[k / 4] >> (8 * (k % 4))) & 0xffu, nibble = (c.words[0] >> (4 * k)) & 0xfu;
    switch (type) {
        case WeightType::q8_0:
        case WeightType::q6_k: return static_cast<float>(static_cast<signed char>(byte));
        case WeightType::q4_0: return static_cast<float>(static_cast<int>(nibble) - 8);
        case WeightType::q4_k: return static_cast<float>(nibble);
        case WeightType::q5_k: return static_cast<float>(byte);
        default: return 0.f;
    }
}

// Element `at` (a flat index over the matrix's rows) of a matrix of ggml blocks: its chunk's weight.
OAR_HOST_DEVICE inline float ggml_weight(const void* w, WeightType type, std::size_t at) {
    const GgmlChunk c = ggml_chunk(type, w, at / 8 * 8);
    return c.scale * ggml_chunk_quant(type, c, static_cast<int>(at % 8)) - c.min;
}

}  // namespace runner::gpu
