// ggml's block-quantized weights (GGUF's Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) read in place by the GPU kernels:
// an element (the tiled prompt kernel, the BLAS's bf16 widening) or a piece of 16 as signed bytes (the
// int8 matrix-vector kernel of decode), from a matrix whose rows are runs of blocks. Plain C++ that
// compiles for the host too, so that CI checks it against gguf's dequantization without a GPU
// (tests/runner/backend/gpu/test_ggml_blocks.cpp). Blocks are only 2-byte aligned (34 and 210 bytes), so
// scales are read in bytes and quants in bytes or halves.
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

OAR_HOST_DEVICE inline float half_at(const unsigned char* p) {
    const unsigned h = p[0] | (static_cast<unsigned>(p[1]) << 8);
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

// The decode kernel reads a row in pieces of 16 weights: two runs of 8 consecutive weights whose quants
// share the bytes loaded. In Q4_K and Q5_K 8 bytes of qs hold run A's low nibbles (sub-block 2g) and run
// B's high ones (sub-block 2g + 1, 32 weights on); in Q6_K 8 bytes of ql hold the low nibbles of A (group
// c) and B (group c + 2, 64 weights on), 8 of qh their top bits; in Q4_0 8 bytes hold weights l.. (low
// nibbles) and l + 16.. (high); in Q8_0 16 bytes are the two runs. So each quant byte is loaded once, in
// words: the kernel loads several pieces of a row first (PieceRaw, a few registers each) and unpacks them
// after, so that many loads are in flight. Unpacked, a run's quants are 8 signed bytes (the format's offset
// taken off), ready for 4-way byte dot products with int8 activations.
constexpr int piece_weights = 16;

// Little-endian words from a block: Q4_K's and Q5_K's blocks (144 and 176 bytes) keep a 16-byte aligned
// matrix's words aligned; Q6_K's (210), Q8_0's (34) and Q4_0's (18) only 2 bytes, so theirs are read as halves.
OAR_HOST_DEVICE inline unsigned word_at(const unsigned char* p) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
    return *reinterpret_cast<const unsigned*>(p);
#else
    unsigned v;
    memcpy(&v, p, sizeof v);
    return v;
#endif
}
OAR_HOST_DEVICE inline unsigned word_at_2(const unsigned char* p) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
    const auto* h = reinterpret_cast<const unsigned short*>(p);
    return h[0] | (static_cast<unsigned>(h[1]) << 16);
#else
    return word_at(p);
#endif
}

// A row's bytes, in the format's blocks: the row of a [d_out, d_in] matrix starts at row * this.
OAR_HOST_DEVICE constexpr std::size_t ggml_row_bytes(WeightType type, std::size_t d_in) {
    return d_in / ggml_block_weights(type) * ggml_block_bytes(type);
}

// A piece's quants as loaded (the K-quants' high bits in q[2], q[3]), and its block, whose scales are
// read when the piece is unpacked: they share the quants' cache lines by then, and a thread that held
// 16 bytes of them per piece in flight ran out of registers (Q4_K's kernel at a quarter of HBM's rate).
struct PieceRaw {
    unsigned q[4] = {0, 0, 0, 0};
    const unsigned char* block = nullptr;
};

// Piece p (weights 16p.. in the row's order of pieces, not its columns) of the row at `row`.
OAR_HOST_DEVICE inline PieceRaw piece_load(WeightType type, const unsigned char* row, int p) {
    PieceRaw r;
    if (type == WeightType::q8_0 || type == WeightType::q4_0) {
        const bool eight = type == WeightType::q8_0;
        r.block = row + static_cast<std::size_t>(p / 2) * ggml_block_bytes(type);
        const unsigned char* qs = r.block + 2 + (p % 2) * (eight ? 16 : 8);
        for (int w = 0; w < (eight ? 4 : 2); ++w) r.q[w] = word_at_2(qs + 4 * w);
        return r;
    }
    r.block = row + static_cast<std::size_t>(p / 16) * ggml_block_bytes(type);
    const int t = p % 16, l0 = 8 * (t % 4);
    if (type == WeightType::q6_k) {
        const int half = t / 8, c = (t % 8) / 4;
        const unsigned char* ql = r.block + 64 * half + 32 * c + l0;
        const unsigned char* qh = r.block + 128 + 32 * half + l0;
        r.q[0] = word_at_2(ql), r.q[1] = word_at_2(ql + 4);
        r.q[2] = word_at_2(qh), r.q[3] = word_at_2(qh + 4);
        return r;
    }
    const bool five = type == WeightType::q5_k;
    const unsigned char* qs = r.block + (five ? 48 : 16) + 32 * (t / 4) + l0;
    r.q[0] = word_at(qs), r.q[1] = word_at(qs + 4);
    if (five) r.q[2] = word_at(r.block + 16 + l0), r.q[3] = word_at(r.block + 20 + l0);
    return r;
}

// Four bytes less `offset` each (bytes of 0..63, offset at most 32): the high bit set first keeps the
// subtraction from borrowing across bytes, and flipping it back leaves v - offset as a signed byte.
OAR_HOST_DEVICE constexpr unsigned bytes_less(unsigned v, unsigned offset) {
    return ((v | 0x80808080u) - offset * 0x01010101u) ^ 0x80808080u;
}

// A piece unpacked: run r's weight k (k < 8) is scale[r] * q_k - min[r], q_k the signed byte k of
// q[r][k / 4], at column offset[r] + k of the row.
struct PieceInts {
    int q[2][2];
    float scale[2], min[2];
    int offset[2];
};

OAR_HOST_DEVICE inline PieceInts piece_ints(WeightType type, const PieceRaw& r, int p) {
    PieceInts out;
    const unsigned char* b = r.block;
    constexpr unsigned nibbles = 0x0f0f0f0fu;
    out.min[0] = out.min[1] = 0.f;
    if (type == WeightType::q8_0 || type == WeightType::q4_0) {
        out.scale[0] = out.scale[1] = half_at(b);
        if (type == WeightType::q8_0) {
            out.offset[0] = 16 * p, out.offset[1] = 16 * p + 8;
            for (int w = 0; w < 4; ++w) out.q[w / 2][w % 2] = static_cast<int>(r.q[w]);
            return out;
        }
        out.offset[0] = 32 * (p / 2) + 8 * (p % 2), out.offset[1] = out.offset[0] + 16;
        for (int run = 0; run < 2; ++run)
            for (int w = 0; w < 2; ++w)
                out.q[run][w] = static_cast<int>(bytes_less((r.q[w] >> (4 * run)) & nibbles, 8));
        return out;
    }
    const int block = 256 * (p / 16), t = p % 16, l0 = 8 * (t % 4);
    if (type == WeightType::q6_k) {
        const int half = t / 8, c = (t % 8) / 4;
        out.offset[0] = block + 128 * half + 32 * c + l0, out.offset[1] = out.offset[0] + 64;
        const float d = half_at(b + 208);
        const unsigned char* scales = b + 192 + 8 * half + l0 / 16 + 2 * c;
        for (int run = 0; run < 2; ++run) {
            out.scale[run] = d * static_cast<float>(static_cast<signed char>(scales[4 * run]));
            const int shift = 2 * c + 4 * run;
            for (int w = 0; w < 2; ++w)  // stored + 32
                out.q[run][w] = static_cast<int>(
                    bytes_less(((r.q[w] >> (4 * run)) & nibbles) | (((r.q[2 + w] >> shift) & 0x03030303u) << 4), 32));
        }
        return out;
    }
    const int g = t / 4;
    out.offset[0] = block + 64 * g + l0, out.offset[1] = out.offset[0] + 32;
    const float d = half_at(b), dmin = half_at(b + 2);
    for (int run = 0; run < 2; ++run) {
        float s, m;
        scale_min_k4(2 * g + run, b + 4, s, m);
        out.scale[run] = d * s, out.min[run] = dmin * m;
        for (int w = 0; w < 2; ++w) {
            unsigned v = (r.q[w] >> (4 * run)) & nibbles;
            if (type == WeightType::q5_k) v |= ((r.q[2 + w] >> (2 * g + run)) & 0x01010101u) << 4;
            out.q[run][w] = static_cast<int>(v);
        }
    }
    return out;
}

}  // namespace runner::gpu
