#include "runner/backend/cpu/int8_dot.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "runner/backend/cpu/simd.h"

namespace runner::cpu {

namespace {

// A row is taken 8 blocks of 32 at a time (a group): a K-quant's super-block, or 8 of Q8_0's, Q4_0's
// or our blocks. Each block's exact integer product goes into one lane of an 8-lane accumulator,
// scaled by its weights' and activations' scales, so every path sums lane j over blocks j, j + 8, ...
// and adds the lanes in one order at the end.
constexpr std::size_t group_blocks = 8, group_weights = group_blocks * int8_block;

// A group's f32 factors: block j's integer product times scale[j], minus min[j] times the activations'
// d_sum (for Q4_K and Q5_K, whose weights are scale * q - min).
struct GroupScales {
    float scale[group_blocks] = {}, min[group_blocks] = {};
    bool has_min = false;
};

float f16_at(const std::byte* p) {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    return f16_to_f32(v);
}

const std::uint8_t* u8(const std::byte* p) { return reinterpret_cast<const std::uint8_t*>(p); }

// ggml's block sizes (model/safetensors.h's block_bytes, as constants for the kernels' address arithmetic).
constexpr std::size_t q8_0_bytes = 34, q4_0_bytes = 18, q4_k_bytes = 144, q5_k_bytes = 176, q6_k_bytes = 210;

// A Q4_K or Q5_K block's 8 sub-block scales and 8 minimums (6 bits each, packed into 12 bytes), as
// two 8-byte words. Sub-blocks 0-3 keep the low 6 bits of bytes 0-3 (scales) and 4-7 (minimums);
// sub-blocks 4-7 take the low (scales) or high (minimums) nibble of bytes 8-11 as their low 4 bits and
// the top 2 bits of bytes 0-3 (scales) or 4-7 (minimums) as their high 2.
struct K4Scales {
    std::uint64_t scales, mins;
};
K4Scales k4_scales(const std::byte* packed) {
    std::uint32_t w[3];
    std::memcpy(w, packed, 12);
    const std::uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, low2 = 0x03030303;
    const std::uint32_t scales_hi = (w[2] & low4) | (((w[0] >> 6) & low2) << 4);
    const std::uint32_t mins_hi = ((w[2] >> 4) & low4) | (((w[1] >> 6) & low2) << 4);
    return {(w[0] & low6) | std::uint64_t{scales_hi} << 32, (w[1] & low6) | std::uint64_t{mins_hi} << 32};
}

// Group g's first byte of the quants, for the formats laid out block after block.
constexpr const std::byte* group_at(WeightType type, Int8Row row, std::size_t g) {
    switch (type) {
        case WeightType::q8: return row.quants + g * group_weights;
        case WeightType::q4: return row.quants + g * group_weights / 2;
        case WeightType::q8_0: return row.quants + g * group_blocks * q8_0_bytes;
        case WeightType::q4_0: return row.quants + g * group_blocks * q4_0_bytes;
        case WeightType::q4_k: return row.quants + g * q4_k_bytes;
        case WeightType::q5_k: return row.quants + g * q5_k_bytes;
        case WeightType::q6_k: return row.quants + g * q6_k_bytes;
        default: return row.quants;
    }
}

constexpr std::size_t group_bytes(WeightType type) {
    switch (type) {
        case WeightType::q8: return group_weights;
        case WeightType::q4: return group_weights / 2;
        case WeightType::q8_0: return group_blocks * q8_0_bytes;
        case WeightType::q4_0: return group_blocks * q4_0_bytes;
        case WeightType::q4_k: return q4_k_bytes;
        case WeightType::q5_k: return q5_k_bytes;
        default: return q6_k_bytes;
    }
}

// The f32 factors of group g's first `blocks` blocks, decoded the same way for every path.
GroupScales group_scales(WeightType type, Int8Row row, std::size_t g, std::size_t blocks) {
    GroupScales s;
    const std::byte* at = group_at(type, row, g);
    switch (type) {
        case WeightType::q8:
        case WeightType::q4:
            for (std::size_t j = 0; j < blocks; ++j) s.scale[j] = row.scales[g * group_blocks + j];
            break;
        case WeightType::q8_0:
            for (std::size_t j = 0; j < blocks; ++j) s.scale[j] = f16_at(at + j * q8_0_bytes);
            break;
        case WeightType::q4_0:
            for (std::size_t j = 0; j < blocks; ++j) s.scale[j] = f16_at(at + j * q4_0_bytes);
            break;
        case WeightType::q4_k:
        case WeightType::q5_k: {
            const float d = f16_at(at), dmin = f16_at(at + 2);
            const K4Scales k = k4_scales(at + 4);
            for (std::size_t j = 0; j < group_blocks; ++j) {
                s.scale[j] = d * static_cast<float>((k.scales >> (8 * j)) & 0xFF);
                s.min[j] = dmin * static_cast<float>((k.mins >> (8 * j)) & 0xFF);
            }
            s.has_min = true;
            break;
        }
        case WeightType::q6_k: std::fill_n(s.scale, group_blocks, f16_at(at + 208)); break;
        default: break;
    }
    return s;
}

// The portable integer products: block j of group g (at `at`) with its 32 activations q.
int block_product(WeightType type, const std::byte* at, std::size_t j, const std::int8_t* q) {
    int sum = 0;
    switch (type) {
        case WeightType::q8:
            for (std::size_t l = 0; l < 32; ++l) sum += static_cast<std::int8_t>(at[32 * j + l]) * q[l];
            break;
        case WeightType::q4:  // element 2k in byte k's low nibble, 2k + 1 in its high one, stored + 8
            for (std::size_t l = 0; l < 32; ++l) {
                const unsigned byte = u8(at)[16 * j + l / 2];
                sum += (static_cast<int>(l % 2 == 0 ? byte & 0xF : byte >> 4) - 8) * q[l];
            }
            break;
        case WeightType::q8_0: {
            const auto* w = reinterpret_cast<const std::int8_t*>(at + j * q8_0_bytes + 2);
            for (std::size_t l = 0; l < 32; ++l) sum += w[l] * q[l];
            break;
        }
        case WeightType::q4_0: {  // the low nibbles are the first 16 weights, stored + 8
            const std::uint8_t* w = u8(at + j * q4_0_bytes + 2);
            for (std::size_t l = 0; l < 16; ++l) sum += ((w[l] & 0xF) - 8) * q[l] + ((w[l] >> 4) - 8) * q[l + 16];
            break;
        }
        case WeightType::q4_k: {  // sub-blocks 2k and 2k + 1: the low and high nibbles of 32 bytes
            const std::uint8_t* w = u8(at + 16) + 32 * (j / 2);
            for (std::size_t l = 0; l < 32; ++l) sum += (j % 2 == 0 ? w[l] & 0xF : w[l] >> 4) * q[l];
            break;
        }
        case WeightType::q5_k: {  // Q4_K's nibbles, and bit j of 32 high-bit bytes as the fifth
            const std::uint8_t* qh = u8(at + 16);
            const std::uint8_t* w = u8(at + 48) + 32 * (j / 2);
            for (std::size_t l = 0; l < 32; ++l)
                sum += ((j % 2 == 0 ? w[l] & 0xF : w[l] >> 4) | (((qh[l] >> j) & 1) << 4)) * q[l];
            break;
        }
        case WeightType::q6_k: {
            // Half j / 4 of 128 weights, group j % 4 of its 32: low nibbles from 64 bytes, two high bits
            // from 32, stored + 32; an int8 scale per 16.
            const std::size_t half = j / 4, part = j % 4;
            const std::uint8_t* ql = u8(at) + 64 * half + (part % 2 == 1 ? 32 : 0);
            const std::uint8_t* qh = u8(at + 128) + 32 * half;
            const auto* sc = reinterpret_cast<const std::int8_t*>(at + 192) + 8 * half + 2 * part;
            for (std::size_t l = 0; l < 32; ++l) {
                const int low = part < 2 ? ql[l] & 0xF : ql[l] >> 4;
                const int w = (low | (((qh[l] >> (2 * part)) & 3) << 4)) - 32;
                sum += sc[l / 16] * w * q[l];
            }
            break;
        }
        default: break;
    }
    return sum;
}

// One token's activations inside an Int8Activations that holds several tokens' of n elements each.
struct TokenInt8 {
    const std::int8_t* q;
    const float *d, *d_sum;
    const std::int16_t* sum16;
};
TokenInt8 token_at(const Int8Activations& x, std::size_t t, std::size_t n) {
    return {x.q.data() + t * n, x.d.data() + t * n / int8_block, x.d_sum.data() + t * n / int8_block,
            x.sum16.data() + t * n / (int8_block / 2)};
}

// Group g's activation scales, zero past the row's end (a tail group of fewer than 8 blocks).
struct GroupActivations {
    float d[group_blocks] = {}, d_sum[group_blocks] = {};
};
GroupActivations group_activations(TokenInt8 x, std::size_t first, std::size_t blocks) {
    GroupActivations a;
    std::copy_n(x.d + first, blocks, a.d);
    std::copy_n(x.d_sum + first, blocks, a.d_sum);
    return a;
}

// Lane j += block j's product * scale[j] * d[j] (- min[j] * d_sum[j]) for all 8 lanes, as the AVX2 path
// computes them: the one f32 step of every path.
void accumulate_lanes(const int* products, const GroupScales& s, const GroupActivations& a, float* lanes) {
    for (std::size_t j = 0; j < group_blocks; ++j) {
        lanes[j] = std::fma(static_cast<float>(products[j]), s.scale[j] * a.d[j], lanes[j]);
        if (s.has_min) lanes[j] = std::fma(-s.min[j], a.d_sum[j], lanes[j]);
    }
}

// The lanes' sum in the order of the AVX2 path's horizontal sum.
float sum_lanes(const float* l) {
    const float a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
    const float b0 = a0 + a2, b1 = a1 + a3;
    return b0 + b1;
}

// A block holding an infinity or a NaN: its products are NaN, as an f32 product's would be (at least
// not finite), and no quant is computed from a non-finite value.
void non_finite_block(Int8Activations& out, std::size_t b) {
    std::fill_n(out.q.data() + b * int8_block, int8_block, std::int8_t{0});
    out.d[b] = out.d_sum[b] = std::numeric_limits<float>::quiet_NaN();
    out.sum16[2 * b] = out.sum16[2 * b + 1] = 0;
}

// 1 / d, or 0 for a block too small for its inverse to be finite (d below the smallest normal float):
// such a block's activations count as zeros.
float inverse_step(float d) { return d >= std::numeric_limits<float>::min() ? 1.f / d : 0.f; }

// Row r's product with token t for r < n_rows, t < n_tokens, into out[r * out_stride + t].
void dot_int8_portable(WeightType type, const Int8Row* rows, std::size_t n_rows, const TokenInt8* tokens,
                       std::size_t n_tokens, std::size_t n, float* out, std::size_t out_stride) {
    for (std::size_t r = 0; r < n_rows; ++r)
        for (std::size_t t = 0; t < n_tokens; ++t) {
            float lanes[group_blocks] = {};
            for (std::size_t g = 0; g * group_weights < n; ++g) {
                const std::size_t blocks = std::min(group_blocks, (n - g * group_weights) / int8_block);
                const std::size_t first = g * group_blocks;
                const std::byte* at = group_at(type, rows[r], g);
                int products[group_blocks] = {};
                for (std::size_t j = 0; j < blocks; ++j)
                    products[j] = block_product(type, at, j, tokens[t].q + (first + j) * int8_block);
                accumulate_lanes(products, group_scales(type, rows[r], g, blocks),
                                 group_activations(tokens[t], first, blocks), lanes);
            }
            out[r * out_stride + t] = sum_lanes(lanes);
        }
}

bool vnni_off = false;  // set only by tests, before any kernel runs

bool vnni_active() {
#if defined(__x86_64__)
    static const bool has = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
    return has && !vnni_off;
#else
    return false;
#endif
}

#if defined(__x86_64__)
#define OAR_AVX2 __attribute__((target("avx2,fma,f16c")))
#define OAR_AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) inline

OAR_AVX2_INLINE __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
OAR_AVX2_INLINE __m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// Eight vectors' lane sums as one vector, in block order.
OAR_AVX2_INLINE __m256i block_sums(const __m256i* p) {
    const __m256i a = _mm256_hadd_epi32(p[0], p[1]), b = _mm256_hadd_epi32(p[2], p[3]);
    const __m256i c = _mm256_hadd_epi32(p[4], p[5]), d = _mm256_hadd_epi32(p[6], p[7]);
    const __m256i ab = _mm256_hadd_epi32(a, b), cd = _mm256_hadd_epi32(c, d);
    return _mm256_add_epi32(_mm256_permute2x128_si256(ab, cd, 0x20), _mm256_permute2x128_si256(ab, cd, 0x31));
}

// 16 bytes of nibbles as 32 bytes of 0-15: the low nibbles, then the high ones.
OAR_AVX2_INLINE __m256i nibbles(__m128i v) {
    const __m128i mask = _mm_set1_epi8(0xF);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), mask), _mm_and_si128(v, mask));
}

// A group's weights as the products take them, decoded once for all the tokens of a prompt's tile: 32
// bytes per block, signed (our q8, Q8_0) or unsigned (Q4_K's and Q5_K's quants, whose minimum is
// subtracted apart; our q4's and Q4_0's nibbles and Q6_K's quants, whose offsets of 8 and 32 are), and
// Q6_K's int8 scale of each 16 as int16 pairs.
struct DecodedGroup {
    __m256i w[group_blocks], magnitude[group_blocks], scales[group_blocks];  // magnitude: |w|, signed formats
};

constexpr bool has_min(WeightType type) { return type == WeightType::q4_k || type == WeightType::q5_k; }
// Nibbles stored 8 higher, multiplied as stored: 8 times the block's sum of activations comes off its
// product, which spares subtracting the 8 from every weight and the two sign operations signed weights take.
constexpr bool plus_8(WeightType type) { return type == WeightType::q4 || type == WeightType::q4_0; }
constexpr bool unsigned_quants(WeightType type) { return has_min(type) || plus_8(type); }
constexpr bool signed_quants(WeightType type) { return !unsigned_quants(type) && type != WeightType::q6_k; }

// The group's first `blocks` blocks (the rest are never read). Inlined into a loop over whole groups,
// `blocks` is the constant 8 and the group stays in registers.
template <WeightType T>
OAR_AVX2_INLINE void decode_group(const std::byte* at, std::size_t blocks, DecodedGroup& g) {
    const __m256i mask = _mm256_set1_epi8(0xF);
    if constexpr (T == WeightType::q8) {
#pragma GCC unroll 8
        for (std::size_t j = 0; j < blocks; ++j) g.w[j] = load32(at + 32 * j);
    } else if constexpr (T == WeightType::q4) {
#pragma GCC unroll 8
        for (std::size_t j = 0; j < blocks; ++j) {
            const __m128i v = load16(at + 16 * j), m = _mm_set1_epi8(0xF);
            const __m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
            g.w[j] = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
        }
    } else if constexpr (T == WeightType::q8_0) {
#pragma GCC unroll 8
        for (std::size_t j = 0; j < blocks; ++j) g.w[j] = load32(at + j * q8_0_bytes + 2);
    } else if constexpr (T == WeightType::q4_0) {
#pragma GCC unroll 8
        for (std::size_t j = 0; j < blocks; ++j) g.w[j] = nibbles(load16(at + j * q4_0_bytes + 2));
    } else if constexpr (T == WeightType::q4_k) {
#pragma GCC unroll 4
        for (std::size_t k = 0; k < 4; ++k) {
            const __m256i w = load32(at + 16 + 32 * k);
            g.w[2 * k] = _mm256_and_si256(w, mask);
            g.w[2 * k + 1] = _mm256_and_si256(_mm256_srli_epi16(w, 4), mask);
        }
    } else if constexpr (T == WeightType::q5_k) {
        // Each step takes bits 0 and 1 of every high-bit byte to bit 4, then shifts the next two down;
        // the 16-bit shifts' carries across bytes fall outside the bits read.
        __m256i h = load32(at + 16);
        const __m256i bit4 = _mm256_set1_epi8(0x10);
#pragma GCC unroll 4
        for (std::size_t k = 0; k < 4; ++k, h = _mm256_srli_epi16(h, 2)) {
            const __m256i w = load32(at + 48 + 32 * k);
            g.w[2 * k] = _mm256_or_si256(_mm256_and_si256(w, mask), _mm256_and_si256(_mm256_slli_epi16(h, 4), bit4));
            g.w[2 * k + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(w, 4), mask),
                                             _mm256_and_si256(_mm256_slli_epi16(h, 3), bit4));
        }
    } else if constexpr (T == WeightType::q6_k) {
        const __m256i bits45 = _mm256_set1_epi8(0x30);
        // The 16 int8 scales as int16, each doubled into an int32 (scales 0-3 and 8-11 in doubled[0],
        // 4-7 and 12-15 in doubled[1]); a block's pair of them is one permute away.
        const __m256i wide = _mm256_cvtepi8_epi16(load16(at + 192));
        const __m256i doubled[2] = {_mm256_unpacklo_epi16(wide, wide), _mm256_unpackhi_epi16(wide, wide)};
#pragma GCC unroll 2
        for (std::size_t half = 0; half < 2; ++half) {
            const __m256i a = load32(at + 64 * half), c = load32(at + 64 * half + 32);
            const __m256i h = load32(at + 128 + 32 * half);
            const __m256i parts[4] = {
                _mm256_or_si256(_mm256_and_si256(a, mask), _mm256_and_si256(_mm256_slli_epi16(h, 4), bits45)),
                _mm256_or_si256(_mm256_and_si256(c, mask), _mm256_and_si256(_mm256_slli_epi16(h, 2), bits45)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), mask), _mm256_and_si256(h, bits45)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), mask),
                                _mm256_and_si256(_mm256_srli_epi16(h, 2), bits45)),
            };
#pragma GCC unroll 4
            for (std::size_t part = 0; part < 4; ++part) {
                const std::size_t j = 4 * half + part;
                g.w[j] = parts[part];
                const int first = static_cast<int>(4 * half + 2 * (part % 2));
                g.scales[j] = _mm256_permutevar8x32_epi32(
                    doubled[part / 2],
                    _mm256_setr_epi32(first, first, first, first, first + 1, first + 1, first + 1, first + 1));
            }
        }
    }
    if constexpr (signed_quants(T)) {
#pragma GCC unroll 8
        for (std::size_t j = 0; j < blocks; ++j) g.magnitude[j] = _mm256_sign_epi8(g.w[j], g.w[j]);
    }
}

// Unsigned bytes u times signed bytes s, four products summed into each int32: maddubs then madd, or
// with VNNI one vpdpbusd (AVX512-VNNI on 256-bit registers, as Ice Lake, Sapphire Rapids and Zen 4 have).
// The integers are the same: maddubs' int16 pair sums cannot saturate here (see block_product). The
// instruction is written as assembly so that the rest of the kernel keeps its AVX2 target and one
// copy serves both. Only a prompt's tiles take it: there it gained 5-9% on an Ice Lake-class Xeon,
// where one token's products, bound by memory, stayed within 4% or lost up to 13% (our q8).
template <bool vnni>
OAR_AVX2_INLINE __m256i dot_u8_s8(__m256i u, __m256i s) {
    if constexpr (vnni) {
        __m256i sum = _mm256_setzero_si256();
        asm("vpdpbusd %2, %1, %0" : "+x"(sum) : "x"(u), "x"(s));
        return sum;
    }
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// Block j's product with its 32 activations q, as 8 int32 partial sums. maddubs multiplies unsigned by
// signed bytes, so signed weights lend their signs to the activations: |w| <= 128 and |q| <= 127 keep
// each pair's sum (at most 32,512) inside maddubs' int16, as do unsigned weights of at most 6 bits.
// Q6_K's pairs are weighted by their scales (each half of 16 products its own) as they widen; its
// weights' offset of 32 comes off the block's sum in accumulate().
template <WeightType T, bool vnni>
OAR_AVX2_INLINE __m256i block_product(const DecodedGroup& g, std::size_t j, const std::int8_t* q) {
    const __m256i x = load32(q), w = g.w[j];
    if constexpr (unsigned_quants(T)) return dot_u8_s8<vnni>(w, x);
    if constexpr (T == WeightType::q6_k) return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), g.scales[j]);
    return dot_u8_s8<vnni>(g.magnitude[j], _mm256_sign_epi8(x, w));
}

// The group's block products with one token's activations (the first `blocks`; the rest zero).
template <WeightType T, bool vnni>
OAR_AVX2_INLINE void group_products(const DecodedGroup& g, const std::int8_t* q, std::size_t blocks, __m256i* p) {
#pragma GCC unroll 8
    for (std::size_t j = 0; j < group_blocks; ++j)
        p[j] = j < blocks ? block_product<T, vnni>(g, j, q + 32 * j) : _mm256_setzero_si256();
}

// A whole group's f32 factors in registers, the same values group_scales() decodes; for Q6_K also its 16
// int8 scales as int16, which weigh the activations' sums of 16 in the offset that accumulate() removes.
struct Factors {
    __m256 scale, min;
    __m256i scales16 = _mm256_setzero_si256();
};
template <WeightType T>
OAR_AVX2_INLINE Factors group_factors(const std::byte* at, Int8Row row, std::size_t g) {
    if constexpr (T == WeightType::q8 || T == WeightType::q4) {
        return {_mm256_loadu_ps(row.scales + g * group_blocks), _mm256_setzero_ps()};
    } else if constexpr (T == WeightType::q8_0 || T == WeightType::q4_0) {
        constexpr std::size_t bytes = T == WeightType::q8_0 ? q8_0_bytes : q4_0_bytes;
        std::uint16_t h[group_blocks];
        for (std::size_t j = 0; j < group_blocks; ++j) std::memcpy(h + j, at + j * bytes, 2);
        return {_mm256_cvtph_ps(load16(h)), _mm256_setzero_ps()};
    } else if constexpr (T == WeightType::q4_k || T == WeightType::q5_k) {
        const K4Scales k = k4_scales(at + 4);
        const __m256 scales =
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(k.scales))));
        const __m256 mins = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(k.mins))));
        std::int32_t d_dmin;  // two f16
        std::memcpy(&d_dmin, at, 4);
        const __m128 d = _mm_cvtph_ps(_mm_cvtsi32_si128(d_dmin));
        return {_mm256_mul_ps(_mm256_set1_ps(_mm_cvtss_f32(d)), scales),
                _mm256_mul_ps(_mm256_set1_ps(_mm_cvtss_f32(_mm_shuffle_ps(d, d, 1))), mins)};
    } else {
        std::uint16_t h;
        std::memcpy(&h, at + 208, 2);
        return {_mm256_set1_ps(_cvtsh_ss(h)), _mm256_setzero_ps(), _mm256_cvtepi8_epi16(load16(at + 192))};
    }
}

OAR_AVX2_INLINE float hsum(__m256 v) {
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// A token's activation scales for group g, and each block's sum of quants, in registers: loaded for a
// whole group, from zero-padded copies for the tail.
struct GroupInputs {
    __m256 d, d_sum;
    __m256i block_sums;
    const std::int16_t* sum16;  // the group's 16 sums of 16 quants (whole groups only: Q6_K has no tails)
};
OAR_AVX2_INLINE GroupInputs group_inputs(TokenInt8 x, std::size_t g, std::size_t blocks) {
    const std::size_t first = g * group_blocks;
    const std::int16_t* sum16 = x.sum16 + 2 * first;
    if (blocks == group_blocks)
        return {_mm256_loadu_ps(x.d + first), _mm256_loadu_ps(x.d_sum + first),
                _mm256_madd_epi16(load32(sum16), _mm256_set1_epi16(1)), sum16};
    const GroupActivations tail = group_activations(x, first, blocks);
    std::int32_t sums[group_blocks] = {};
    for (std::size_t j = 0; j < blocks; ++j) sums[j] = sum16[2 * j] + sum16[2 * j + 1];
    return {_mm256_loadu_ps(tail.d), _mm256_loadu_ps(tail.d_sum), load32(sums), sum16};
}

template <WeightType T>
OAR_AVX2_INLINE Factors factors(const std::byte* at, Int8Row row, std::size_t g, std::size_t blocks) {
    if (blocks == group_blocks || T == WeightType::q6_k) return group_factors<T>(at, row, g);
    const GroupScales s = group_scales(T, row, g, blocks);
    return {_mm256_loadu_ps(s.scale), _mm256_loadu_ps(s.min)};
}

// acc += the group's block sums * scale * d (- min * d_sum): the one f32 step, as accumulate_lanes. A block's
// sum first loses its weights' offset, exact integers, so that the block sums are block_product()'s: a Q6_K
// block 32 times its two scales' products with the sums of 16 quants, a nibble format's 8 times its sum.
template <WeightType T>
OAR_AVX2_INLINE __m256 accumulate(__m256 acc, const __m256i* p, const Factors& f, const GroupInputs& x) {
    __m256i sums = block_sums(p);
    if constexpr (T == WeightType::q6_k)
        sums = _mm256_sub_epi32(sums, _mm256_slli_epi32(_mm256_madd_epi16(f.scales16, load32(x.sum16)), 5));
    if constexpr (plus_8(T)) sums = _mm256_sub_epi32(sums, _mm256_slli_epi32(x.block_sums, 3));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(f.scale, x.d), acc);
    if constexpr (has_min(T)) acc = _mm256_fnmadd_ps(f.min, x.d_sum, acc);
    return acc;
}

OAR_AVX2_INLINE void prefetch_group(WeightType type, const std::byte* at) {
    for (std::size_t line = 0; line < group_bytes(type); line += 64)
        _mm_prefetch(reinterpret_cast<const char*>(at) + row_prefetch_bytes + line, _MM_HINT_T0);
}

// One group of R rows (one token's decode) into their accumulators.
template <WeightType T, std::size_t R>
OAR_AVX2_INLINE void add_group(const Int8Row* rows, TokenInt8 x, std::size_t g, std::size_t blocks, __m256* acc) {
    const GroupInputs in = group_inputs(x, g, blocks);
#pragma GCC unroll 2
    for (std::size_t r = 0; r < R; ++r) {
        const std::byte* at = group_at(T, rows[r], g);
        prefetch_group(T, at);
        DecodedGroup decoded{};
        decode_group<T>(at, blocks, decoded);
        __m256i p[group_blocks];
        group_products<T, false>(decoded, x.q + g * group_weights, blocks, p);
        acc[r] = accumulate<T>(acc[r], p, factors<T>(at, rows[r], g, blocks), in);
    }
}

template <WeightType T, std::size_t R>
OAR_AVX2 void dot_int8_avx2(const Int8Row* rows, TokenInt8 x, std::size_t n, float* out) {
    __m256 acc[R];
    for (std::size_t r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    const std::size_t whole = n / group_weights;
    for (std::size_t g = 0; g < whole; ++g) add_group<T, R>(rows, x, g, group_blocks, acc);
    if (n % group_weights != 0) add_group<T, R>(rows, x, whole, n % group_weights / int8_block, acc);
    for (std::size_t r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

// One group of a prompt's tile: each row's blocks decoded once, then multiplied with every token's
// activations. Each (row, token) accumulator takes the same steps as dot_int8_avx2's.
template <WeightType T, bool vnni>
OAR_AVX2_INLINE void add_tile_group(const Int8Row* rows, std::size_t n_rows, const TokenInt8* tokens,
                                    std::size_t n_tokens, std::size_t g, std::size_t blocks,
                                    __m256 (*acc)[int8_tile_tokens]) {
    GroupInputs in[int8_tile_tokens];
    for (std::size_t t = 0; t < n_tokens; ++t) in[t] = group_inputs(tokens[t], g, blocks);
    for (std::size_t r = 0; r < n_rows; ++r) {
        const std::byte* at = group_at(T, rows[r], g);
        DecodedGroup decoded{};
        decode_group<T>(at, blocks, decoded);
        const Factors f = factors<T>(at, rows[r], g, blocks);
        for (std::size_t t = 0; t < n_tokens; ++t) {
            __m256i p[group_blocks];
            group_products<T, vnni>(decoded, tokens[t].q + g * group_weights, blocks, p);
            acc[r][t] = accumulate<T>(acc[r][t], p, f, in[t]);
        }
    }
}

template <WeightType T, bool vnni>
OAR_AVX2 void dot_int8_tile_avx2(const Int8Row* rows, std::size_t n_rows, const TokenInt8* tokens, std::size_t n_tokens,
                                 std::size_t n, float* out, std::size_t out_stride) {
    __m256 acc[int8_tile_rows][int8_tile_tokens];
    for (auto& row : acc)
        for (auto& a : row) a = _mm256_setzero_ps();
    const std::size_t whole = n / group_weights;
    for (std::size_t g = 0; g < whole; ++g)
        add_tile_group<T, vnni>(rows, n_rows, tokens, n_tokens, g, group_blocks, acc);
    if (n % group_weights != 0)
        add_tile_group<T, vnni>(rows, n_rows, tokens, n_tokens, whole, n % group_weights / int8_block, acc);
    for (std::size_t r = 0; r < n_rows; ++r)
        for (std::size_t t = 0; t < n_tokens; ++t) out[r * out_stride + t] = hsum(acc[r][t]);
}

template <std::size_t R>
void dot_int8_avx2(WeightType type, const Int8Row* rows, TokenInt8 x, std::size_t n, float* out) {
    switch (type) {
        case WeightType::q8: return dot_int8_avx2<WeightType::q8, R>(rows, x, n, out);
        case WeightType::q4: return dot_int8_avx2<WeightType::q4, R>(rows, x, n, out);
        case WeightType::q8_0: return dot_int8_avx2<WeightType::q8_0, R>(rows, x, n, out);
        case WeightType::q4_0: return dot_int8_avx2<WeightType::q4_0, R>(rows, x, n, out);
        case WeightType::q4_k: return dot_int8_avx2<WeightType::q4_k, R>(rows, x, n, out);
        case WeightType::q5_k: return dot_int8_avx2<WeightType::q5_k, R>(rows, x, n, out);
        case WeightType::q6_k: return dot_int8_avx2<WeightType::q6_k, R>(rows, x, n, out);
        default: return;
    }
}

template <bool vnni>
void dot_int8_tile_avx2(WeightType type, const Int8Row* rows, std::size_t n_rows, const TokenInt8* tokens,
                        std::size_t n_tokens, std::size_t n, float* out, std::size_t out_stride) {
    const auto run = [&](auto kernel) { kernel(rows, n_rows, tokens, n_tokens, n, out, out_stride); };
    switch (type) {
        case WeightType::q8: return run(dot_int8_tile_avx2<WeightType::q8, vnni>);
        case WeightType::q4: return run(dot_int8_tile_avx2<WeightType::q4, vnni>);
        case WeightType::q8_0: return run(dot_int8_tile_avx2<WeightType::q8_0, vnni>);
        case WeightType::q4_0: return run(dot_int8_tile_avx2<WeightType::q4_0, vnni>);
        case WeightType::q4_k: return run(dot_int8_tile_avx2<WeightType::q4_k, vnni>);
        case WeightType::q5_k: return run(dot_int8_tile_avx2<WeightType::q5_k, vnni>);
        case WeightType::q6_k: return run(dot_int8_tile_avx2<WeightType::q6_k, vnni>);
        default: return;
    }
}

void dot_int8_tile_x86(WeightType type, const Int8Row* rows, std::size_t n_rows, const TokenInt8* tokens,
                       std::size_t n_tokens, std::size_t n, float* out, std::size_t out_stride) {
    if (vnni_active()) return dot_int8_tile_avx2<true>(type, rows, n_rows, tokens, n_tokens, n, out, out_stride);
    dot_int8_tile_avx2<false>(type, rows, n_rows, tokens, n_tokens, n, out, out_stride);
}

OAR_AVX2_INLINE int hsum_epi32(__m256i s) {
    const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    const __m128i s2 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xb1)));
}

OAR_AVX2 void quantize_avx2(const float* x, std::size_t n, Int8Activations& out) {
    const __m256 sign = _mm256_set1_ps(-0.f), largest = _mm256_set1_ps(std::numeric_limits<float>::max());
    for (std::size_t b = 0; b < n / int8_block; ++b) {
        const float* xb = x + b * int8_block;
        __m256 v[4], amax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
        for (int k = 0; k < 4; ++k) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            const __m256 magnitude = _mm256_andnot_ps(sign, v[k]);
            amax = _mm256_max_ps(amax, magnitude);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(magnitude, largest, _CMP_NLE_UQ));  // infinite or NaN
        }
        if (_mm256_movemask_ps(bad) != 0) {
            non_finite_block(out, b);
            continue;
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
        const float d = _mm_cvtss_f32(m) / 127.f, id = inverse_step(d);
        __m256i ints[4];
        for (int k = 0; k < 4; ++k) ints[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], _mm256_set1_ps(id)));
        // int32 to int8 in element order: the packs interleave 128-bit halves, the permute undoes it.
        const __m256i packed =
            _mm256_packs_epi16(_mm256_packs_epi32(ints[0], ints[1]), _mm256_packs_epi32(ints[2], ints[3]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.q.data() + b * int8_block),
                            _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        const int first = hsum_epi32(_mm256_add_epi32(ints[0], ints[1]));
        const int second = hsum_epi32(_mm256_add_epi32(ints[2], ints[3]));
        out.d[b] = d;
        out.d_sum[b] = d * static_cast<float>(first + second);
        out.sum16[2 * b] = static_cast<std::int16_t>(first);
        out.sum16[2 * b + 1] = static_cast<std::int16_t>(second);
    }
}
#endif

}  // namespace

void quantize_activations(const float* x, std::size_t n, Int8Activations& out) {
    const std::size_t blocks = n / int8_block;
    out.q.resize(n);
    out.d.resize(blocks);
    out.d_sum.resize(blocks);
    out.sum16.resize(2 * blocks);
#if defined(__x86_64__)
    if (using_avx2()) return quantize_avx2(x, n, out);
#endif
    for (std::size_t b = 0; b < blocks; ++b) {
        const float* xb = x + b * int8_block;
        float amax = 0;
        bool bad = false;
        for (std::size_t l = 0; l < int8_block; ++l) {
            amax = std::max(amax, std::fabs(xb[l]));
            bad = bad || !(std::fabs(xb[l]) <= std::numeric_limits<float>::max());
        }
        if (bad) {
            non_finite_block(out, b);
            continue;
        }
        const float d = amax / 127.f, id = inverse_step(d);
        int half_sums[2] = {};
        for (std::size_t l = 0; l < int8_block; ++l) {
            const auto q = static_cast<std::int8_t>(std::nearbyint(xb[l] * id));
            out.q[b * int8_block + l] = q;
            half_sums[l / (int8_block / 2)] += q;
        }
        out.d[b] = d;
        out.d_sum[b] = d * static_cast<float>(half_sums[0] + half_sums[1]);
        out.sum16[2 * b] = static_cast<std::int16_t>(half_sums[0]);
        out.sum16[2 * b + 1] = static_cast<std::int16_t>(half_sums[1]);
    }
}

bool using_vnni() { return using_avx2() && vnni_active(); }

void force_no_vnni(bool off) { vnni_off = off; }

std::vector<float> dequantized(const Int8Activations& a) {
    std::vector<float> x(a.q.size());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = a.d[i / int8_block] * static_cast<float>(a.q[i]);
    return x;
}

float dot_int8(WeightType type, Int8Row row, const Int8Activations& x, std::size_t n) {
    float out = 0;
    const TokenInt8 token = token_at(x, 0, n);
#if defined(__x86_64__)
    if (using_avx2()) {
        dot_int8_avx2<1>(type, &row, token, n, &out);
        return out;
    }
#endif
    dot_int8_portable(type, &row, 1, &token, 1, n, &out, 1);
    return out;
}

void dot_int8_rows2(WeightType type, Int8Row row0, Int8Row row1, const Int8Activations& x, std::size_t n, float* out) {
    const Int8Row rows[2] = {row0, row1};
    const TokenInt8 token = token_at(x, 0, n);
#if defined(__x86_64__)
    if (using_avx2()) return dot_int8_avx2<2>(type, rows, token, n, out);
#endif
    dot_int8_portable(type, rows, 2, &token, 1, n, out, 1);
}

void dot_int8_tile(WeightType type, const Int8Row* rows, std::size_t n_rows, const Int8Activations& x,
                   std::size_t first_token, std::size_t n_tokens, std::size_t n, float* out) {
    if (n_rows == 0 || n_tokens == 0) return;
    TokenInt8 tokens[int8_tile_tokens];
    for (std::size_t t = 0; t < n_tokens; ++t) tokens[t] = token_at(x, first_token + t, n);
#if defined(__x86_64__)
    if (using_avx2()) return dot_int8_tile_x86(type, rows, n_rows, tokens, n_tokens, n, out, int8_tile_tokens);
#endif
    dot_int8_portable(type, rows, n_rows, tokens, n_tokens, n, out, int8_tile_tokens);
}

}  // namespace runner::cpu
