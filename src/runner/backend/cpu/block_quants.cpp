#include "runner/backend/cpu/block_quants.h"

#include <cstdint>
#include <cstring>

#include "runner/backend/cpu/simd.h"

namespace runner::cpu {

namespace {

constexpr std::size_t k_block = 256;  // a K-quant super-block's weights

float f16_at(const std::byte* p) {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    return f16_to_f32(v);
}

const std::uint8_t* bytes_at(const std::byte* p) { return reinterpret_cast<const std::uint8_t*>(p); }

// Q8_0: f16 scale, 32 int8 quants.
void q8_0_block(const std::byte* b, float* out) {
    const float d = f16_at(b);
    const auto* q = reinterpret_cast<const std::int8_t*>(b + 2);
    for (int i = 0; i < 32; ++i) out[i] = d * static_cast<float>(q[i]);
}

// Q4_0: f16 scale, 16 bytes of nibbles stored + 8; the low nibbles are the first 16 weights.
void q4_0_block(const std::byte* b, float* out) {
    const float d = f16_at(b);
    const std::uint8_t* q = bytes_at(b + 2);
    for (int i = 0; i < 16; ++i) {
        out[i] = d * static_cast<float>((q[i] & 0xF) - 8);
        out[i + 16] = d * static_cast<float>((q[i] >> 4) - 8);
    }
}

// A K-quant's 6-bit scale and minimum of sub-block j (of 8), packed into 12 bytes.
void scale_min_k4(int j, const std::uint8_t* s, float& scale, float& min) {
    if (j < 4) {
        scale = static_cast<float>(s[j] & 63);
        min = static_cast<float>(s[j + 4] & 63);
    } else {
        scale = static_cast<float>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        min = static_cast<float>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// Q4_K: f16 d and dmin, 12 bytes of sub-block scales and minimums, 128 bytes of nibbles; each 64 weights
// are two sub-blocks of 32, the low nibbles of 32 bytes then their high nibbles.
void q4_k_block(const std::byte* b, float* out) {
    const float d = f16_at(b), dmin = f16_at(b + 2);
    const std::uint8_t* scales = bytes_at(b + 4);
    const std::uint8_t* q = bytes_at(b + 16);
    for (int j = 0; j < 8; j += 2, q += 32) {
        float s0, m0, s1, m1;
        scale_min_k4(j, scales, s0, m0);
        scale_min_k4(j + 1, scales, s1, m1);
        for (int l = 0; l < 32; ++l) {
            *out++ = d * s0 * static_cast<float>(q[l] & 0xF) - dmin * m0;
        }
        for (int l = 0; l < 32; ++l) {
            *out++ = d * s1 * static_cast<float>(q[l] >> 4) - dmin * m1;
        }
    }
}

// Q5_K: as Q4_K with a fifth bit per weight in 32 bytes of high bits, two bit planes per 64 weights.
void q5_k_block(const std::byte* b, float* out) {
    const float d = f16_at(b), dmin = f16_at(b + 2);
    const std::uint8_t* scales = bytes_at(b + 4);
    const std::uint8_t* qh = bytes_at(b + 16);
    const std::uint8_t* q = bytes_at(b + 48);
    std::uint8_t bit0 = 1, bit1 = 2;
    for (int j = 0; j < 8; j += 2, q += 32, bit0 <<= 2, bit1 <<= 2) {
        float s0, m0, s1, m1;
        scale_min_k4(j, scales, s0, m0);
        scale_min_k4(j + 1, scales, s1, m1);
        for (int l = 0; l < 32; ++l) {
            *out++ = d * s0 * static_cast<float>((q[l] & 0xF) + (qh[l] & bit0 ? 16 : 0)) - dmin * m0;
        }
        for (int l = 0; l < 32; ++l) {
            *out++ = d * s1 * static_cast<float>((q[l] >> 4) + (qh[l] & bit1 ? 16 : 0)) - dmin * m1;
        }
    }
}

// Q6_K: 128 bytes of low nibbles, 64 bytes of high bit pairs, 16 int8 sub-block scales, an f16 d; the
// quants are stored + 32. Each half of 128 weights takes 64 low-nibble bytes and 32 high-bit bytes.
void q6_k_block(const std::byte* b, float* out) {
    const std::uint8_t* ql = bytes_at(b);
    const std::uint8_t* qh = bytes_at(b + 128);
    const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
    const float d = f16_at(b + 208);
    for (int half = 0; half < 2; ++half, out += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            out[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
            out[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
            out[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
            out[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
        }
    }
}

using BlockFn = void (*)(const std::byte*, float*);

BlockFn block_fn(DType dtype) {
    switch (dtype) {
        case DType::q8_0: return q8_0_block;
        case DType::q4_0: return q4_0_block;
        case DType::q4_k: return q4_k_block;
        case DType::q5_k: return q5_k_block;
        case DType::q6_k: return q6_k_block;
        default: return nullptr;
    }
}

}  // namespace

void convert_blocks(DType dtype, const std::byte* row, float* out, std::size_t n) {
    const BlockFn widen = block_fn(dtype);
    const std::size_t elements = block_elements(dtype), bytes = block_bytes(dtype);
    for (std::size_t i = 0; i < n; i += elements, row += bytes) widen(row, out + i);
}

float dot_blocks(DType dtype, const std::byte* row, const float* x, std::size_t n) {
    const BlockFn widen = block_fn(dtype);
    const std::size_t elements = block_elements(dtype), bytes = block_bytes(dtype);
    float w[k_block];
    float sum = 0;
    for (std::size_t i = 0; i < n; i += elements, row += bytes) {
        widen(row, w);
        sum += dot_f32(w, x + i, elements);
    }
    return sum;
}

}  // namespace runner::cpu
