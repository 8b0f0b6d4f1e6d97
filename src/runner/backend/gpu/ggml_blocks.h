// ggml's block-quantized weights (GGUF's Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) read in place by the GPU kernels:
// an element (the tiled prompt kernel, the BLAS's bf16 widening) or a piece of 32 as bytes with their
// scales (the int8 matrix-vector kernel of decode), from a matrix whose rows are runs of blocks. Plain C++
// that compiles for the host too, so that CI checks it against gguf's dequantization without a GPU
// (tests/runner/backend/gpu/test_ggml_blocks.cpp). Q8_0's, Q4_0's and Q6_K's blocks (34, 18 and 210
// bytes) are only 2-byte aligned: their scales are read as halves or bytes, their quants as words.
#pragma once

#include <cstddef>
#include <cstring>

#include "runner/model/weight_format.h"

#if defined(__CUDACC__) || defined(__HIPCC__)
#include "runner/backend/gpu/vendor.h"
#define OAR_HOST_DEVICE __host__ __device__
#else
#define OAR_HOST_DEVICE
#endif

namespace runner::gpu {

// A little-endian 16-bit word at an even offset of a 2-byte aligned block: one load on the GPU.
OAR_HOST_DEVICE inline unsigned short u16_at(const unsigned char* p) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
    return *reinterpret_cast<const unsigned short*>(p);
#else
    return static_cast<unsigned short>(p[0] | (p[1] << 8));
#endif
}

OAR_HOST_DEVICE inline float half_at(const unsigned char* p) {
    const unsigned h = u16_at(p);
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
    return __half2float(__ushort_as_half(static_cast<unsigned short>(h)));  // one conversion instruction
#else
    const unsigned sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0) {
        const float f = static_cast<float>(mant) * (1.f / 16777216.f);  // subnormal: mant * 2^-24
        return sign ? -f : f;
    }
    const unsigned bits = sign | (exp == 31 ? 0x7f800000u | (mant << 13) : ((exp + 112) << 23) | (mant << 13));
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
#endif
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

// The K-quants (256 weights a super-block), and a super-block's bytes.
OAR_HOST_DEVICE constexpr bool is_kquant(WeightType type) {
    return type == WeightType::q4_k || type == WeightType::q5_k || type == WeightType::q6_k;
}
OAR_HOST_DEVICE constexpr std::size_t kquant_block_bytes(WeightType type) {
    return type == WeightType::q4_k ? 144 : type == WeightType::q5_k ? 176 : 210;
}

// A block's bytes and weights, any of ggml's types: Q8_0's and Q4_0's 32 weights after their f16 scale.
OAR_HOST_DEVICE constexpr std::size_t ggml_block_bytes(WeightType type) {
    return type == WeightType::q8_0 ? 34 : type == WeightType::q4_0 ? 18 : kquant_block_bytes(type);
}
OAR_HOST_DEVICE constexpr std::size_t ggml_block_weights(WeightType type) { return is_kquant(type) ? 256 : 32; }

// 8 consecutive weights of a block, for reading one element: weight k is
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
            const unsigned char* b = base + at / 32 * ggml_block_bytes(type);
            const unsigned char* q = b + 2 + at % 32;
            c.scale = half_at(b);
            for (int k = 0; k < 8; ++k) c.words[k / 4] |= static_cast<unsigned>(q[k]) << (8 * (k % 4));
            break;
        }
        case WeightType::q4_0: {
            const unsigned char* b = base + at / 32 * ggml_block_bytes(type);
            const int within = static_cast<int>(at % 32);
            c.scale = half_at(b);
            c.words[0] = nibbles8(b + 2 + within % 16, within < 16 ? 0 : 4);
            break;
        }
        case WeightType::q4_k:
        case WeightType::q5_k: {
            const bool five = type == WeightType::q5_k;
            const unsigned char* b = base + at / 256 * kquant_block_bytes(type);
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
            const unsigned char* b = base + at / 256 * kquant_block_bytes(type);
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

// The decode kernel reads a row in pieces of 32 weights: 16 bytes of quants (32 with Q8_0's, and the
// K-quants' high bits beside them) that hold two halves of 16 consecutive columns, each half at one scale.
// In Q4_K and Q5_K 16 bytes of qs hold half A's low nibbles (sub-block 2g) and half B's high ones
// (sub-block 2g + 1, 32 columns on); in Q6_K 16 bytes of ql hold the low nibbles of A (group c) and B
// (group c + 2, 64 columns on), 16 of qh their top bits; Q4_0's block holds columns 0.. in its low nibbles
// and 16.. in its high ones; Q8_0's is the two halves in order. So each quant byte is loaded once, in
// words: the kernel loads several pieces of a row first (PieceRaw, a few registers each) and unpacks them
// after, so that many loads are in flight. Scales are read once per half, where 16-weight pieces each
// read and decoded theirs (Q4_K's kernel at under half of HBM's rate, bound by its instructions).
constexpr int piece_weights = 32;

// A row's bytes, in the format's blocks: the row of a [d_out, d_in] matrix starts at row * this.
OAR_HOST_DEVICE constexpr std::size_t ggml_row_bytes(WeightType type, std::size_t d_in) {
    return d_in / ggml_block_weights(type) * ggml_block_bytes(type);
}

// A piece's quant words as loaded, and its block, whose scales are read when the piece is unpacked: they
// share the quants' cache lines by then, and holding them in flight too ran out of registers. Q4_K's and
// Q5_K's blocks (144 and 176 bytes) keep a 16-byte aligned matrix's quants aligned for vector loads;
// Q6_K's (210), Q8_0's (34) and Q4_0's (18) only 2 bytes, so on the GPU their words come from the word
// boundary below, one more than needed, and are shifted into place by `shift` bits when unpacked.
struct PieceRaw {
    unsigned q[10] = {};
    const unsigned char* block = nullptr;
    unsigned shift = 0;
};

#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
OAR_HOST_DEVICE inline void load_aligned_words(const unsigned char* p, unsigned* q, int n) {
    for (int k = 0; k < n; k += 4) {
        const uint4 v = *reinterpret_cast<const uint4*>(p + 4 * k);
        q[k] = v.x, q[k + 1] = v.y, q[k + 2] = v.z, q[k + 3] = v.w;
    }
}
// n words from 2-byte aligned p into q[0..n]; returns the shift. q[n] is read only where p is not 4-byte
// aligned, and is then the aligned word that holds the run's last two bytes: no load leaves the words
// the run touches.
OAR_HOST_DEVICE inline unsigned load_words_2(const unsigned char* p, unsigned* q, int n) {
    const auto misaligned = static_cast<unsigned>(reinterpret_cast<std::size_t>(p) & 2u);
    const auto* w = reinterpret_cast<const unsigned*>(p - misaligned);
    for (int k = 0; k < n; ++k) q[k] = w[k];
    q[n] = misaligned ? w[n] : 0u;
    return 8 * misaligned;
}
OAR_HOST_DEVICE inline unsigned funnel(unsigned lo, unsigned hi, unsigned shift) {
    return __funnelshift_r(lo, hi, shift);
}
#else
OAR_HOST_DEVICE inline void load_aligned_words(const unsigned char* p, unsigned* q, int n) {
    memcpy(q, p, 4 * static_cast<std::size_t>(n));
}
// As the GPU reads them, so that the host test covers the shifts; only the bytes the GPU uses are read.
OAR_HOST_DEVICE inline unsigned load_words_2(const unsigned char* p, unsigned* q, int n) {
    const auto misaligned = static_cast<unsigned>(reinterpret_cast<std::size_t>(p) & 2u);
    memset(q, 0, 4 * static_cast<std::size_t>(n + 1));
    memcpy(q, p - misaligned, 4 * static_cast<std::size_t>(n) + misaligned);
    return 8 * misaligned;
}
OAR_HOST_DEVICE inline unsigned funnel(unsigned lo, unsigned hi, unsigned shift) {
    return shift ? (lo >> shift) | (hi << (32 - shift)) : lo;
}
#endif

// Piece p of the row at `row`: p's block and, within it, the piece's place.
OAR_HOST_DEVICE inline PieceRaw piece_load(WeightType type, const unsigned char* row, int p) {
    PieceRaw r;
    if (type == WeightType::q8_0 || type == WeightType::q4_0) {
        r.block = row + static_cast<std::size_t>(p) * ggml_block_bytes(type);
        r.shift = load_words_2(r.block + 2, r.q, type == WeightType::q8_0 ? 8 : 4);
        return r;
    }
    r.block = row + static_cast<std::size_t>(p / 8) * ggml_block_bytes(type);
    const int t = p % 8;
    if (type == WeightType::q6_k) {
        const int half = t / 4, c = (t % 4) / 2, h = t % 2;
        r.shift = load_words_2(r.block + 64 * half + 32 * c + 16 * h, r.q, 4);
        load_words_2(r.block + 128 + 32 * half + 16 * h, r.q + 5, 4);  // at the same shift: 128 + 32k apart
        return r;
    }
    const bool five = type == WeightType::q5_k;
    load_aligned_words(r.block + (five ? 48 : 16) + 16 * t, r.q, 4);  // g = t / 2, h = t % 2: 32g + 16h
    if (five) load_aligned_words(r.block + 16 + 16 * (t % 2), r.q + 4, 4);
    return r;
}

// A piece unpacked: half h's weight k (k < 16) is scale[h] * q_k - min[h], q_k the signed byte k % 4 of
// q[h][k / 4], at column column[h] + k of the row. Offsets (Q4_0's 8, Q6_K's 32) are in min, so that
// the kernel takes them off once per half, with the activations' sum, instead of from every byte.
struct PieceInts {
    int q[2][4];
    float scale[2], min[2];
    int column[2];
};

OAR_HOST_DEVICE inline PieceInts piece_ints(WeightType type, const PieceRaw& r, int p) {
    PieceInts out;
    const unsigned char* b = r.block;
    constexpr unsigned nibbles = 0x0f0f0f0fu;
    const auto word = [&](int k) { return funnel(r.q[k], r.q[k + 1], r.shift); };
    if (type == WeightType::q8_0 || type == WeightType::q4_0) {
        out.column[0] = 32 * p, out.column[1] = 32 * p + 16;
        const float d = half_at(b);
        const bool eight = type == WeightType::q8_0;
        for (int h = 0; h < 2; ++h) {
            out.scale[h] = d, out.min[h] = eight ? 0.f : 8.f * d;
            for (int w = 0; w < 4; ++w)
                out.q[h][w] = static_cast<int>(eight ? word(4 * h + w) : (word(w) >> (4 * h)) & nibbles);
        }
        return out;
    }
    const int block = 256 * (p / 8), t = p % 8;
    if (type == WeightType::q6_k) {
        const int half = t / 4, c = (t % 4) / 2, h = t % 2;
        out.column[0] = block + 128 * half + 32 * c + 16 * h, out.column[1] = out.column[0] + 64;
        const float d = half_at(b + 208);
        const unsigned char* scales = b + 192 + 8 * half + h + 2 * c;
        for (int run = 0; run < 2; ++run) {
            out.scale[run] = d * static_cast<float>(static_cast<signed char>(scales[4 * run]));
            out.min[run] = 32.f * out.scale[run];
            const int shift = 2 * c + 4 * run;
            for (int w = 0; w < 4; ++w)
                out.q[run][w] = static_cast<int>(((word(w) >> (4 * run)) & nibbles) |
                                                 (((word(5 + w) >> shift) & 0x03030303u) << 4));
        }
        return out;
    }
    const int g = t / 2, h = t % 2;
    out.column[0] = block + 64 * g + 16 * h, out.column[1] = out.column[0] + 32;
    const float d = half_at(b), dmin = half_at(b + 2);
    // sub-blocks 2g and 2g + 1's 6-bit scales and minimums as byte pairs, from the 12 bytes at b + 4
    const unsigned lo = u16_at(b + 4 + 2 * g), hi = u16_at(b + 4 + 2 * (g + 2)), top = u16_at(b + 4 + 2 * (g ^ 2));
    const unsigned scale2 = g < 2 ? lo & 0x3f3fu : (hi & 0x0f0fu) | ((top & 0xc0c0u) >> 2);
    const unsigned min2 = g < 2 ? hi & 0x3f3fu : ((hi >> 4) & 0x0f0fu) | ((lo & 0xc0c0u) >> 2);
    for (int run = 0; run < 2; ++run) {
        out.scale[run] = d * static_cast<float>((scale2 >> (8 * run)) & 0xffu);
        out.min[run] = dmin * static_cast<float>((min2 >> (8 * run)) & 0xffu);
        for (int w = 0; w < 4; ++w) {
            unsigned v = (r.q[w] >> (4 * run)) & nibbles;
            if (type == WeightType::q5_k) v |= ((r.q[4 + w] >> (2 * g + run)) & 0x01010101u) << 4;
            out.q[run][w] = static_cast<int>(v);
        }
    }
    return out;
}

}  // namespace runner::gpu
