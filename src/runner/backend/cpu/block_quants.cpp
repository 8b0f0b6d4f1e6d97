#include "runner/backend/cpu/block_quants.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

#if defined(__x86_64__)
// The AVX2 dots: each block's weights are widened into registers, 8 at a time, and multiplied into the
// row's accumulators there, with no pass through memory. Scales and minimums are applied per 8 weights.

#define OAR_AVX2 __attribute__((target("avx2,fma,f16c")))
// The block and sink functions inline into each row loop, so that the accumulator stays in a register.
#define OAR_AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) inline

OAR_AVX2 inline __m256i bytes8(const std::uint8_t* p) {  // 8 unsigned bytes as int32 lanes
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

OAR_AVX2 inline __m256 load_x(const float* x) { return _mm256_loadu_ps(x); }

// f16 with F16C, so that no call leaves the AVX code (a call into SSE code with the accumulators live costs
// a state transition on some cores).
OAR_AVX2 inline float half_avx(const std::byte* p) {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    return _cvtsh_ss(v);
}

// The 8 sub-blocks' scales and minimums of a Q4_K or Q5_K block, decoded once per block.
OAR_AVX2 inline void k4_scales(const std::uint8_t* s, float d, float dmin, float* scale, float* min) {
    for (int j = 0; j < 4; ++j) {
        scale[j] = d * static_cast<float>(s[j] & 63);
        min[j] = dmin * static_cast<float>(s[j + 4] & 63);
        scale[j + 4] = d * static_cast<float>((s[j + 8] & 0xF) | ((s[j] >> 6) << 4));
        min[j + 4] = dmin * static_cast<float>((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

// Each block's weights go, 8 at a time, to a sink: a dot product's accumulator, or a row being widened (a
// prompt's tiles). `block` is where the current block starts in the row. Weights arrive scaled
// (operator()), or, for the 32-weight blocks of one scale, as quants and then the block's scale, which a
// dot product applies once to the block's sum.
struct DotSink {
    const float* x;
    __m256 acc = _mm256_setzero_ps(), block_acc = _mm256_setzero_ps();
    std::size_t block = 0;
    OAR_AVX2_INLINE void operator()(int i, __m256 w) { acc = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + block + i), acc); }
    OAR_AVX2_INLINE void quants(int i, __m256 q) {
        block_acc = _mm256_fmadd_ps(q, _mm256_loadu_ps(x + block + i), block_acc);
    }
    OAR_AVX2_INLINE void scale_block(__m256 d) {
        acc = _mm256_fmadd_ps(d, block_acc, acc);
        block_acc = _mm256_setzero_ps();
    }
};

struct StoreSink {
    float* out;
    std::size_t block = 0;
    OAR_AVX2_INLINE void operator()(int i, __m256 w) { _mm256_storeu_ps(out + block + i, w); }
    OAR_AVX2_INLINE void quants(int i, __m256 q) { _mm256_storeu_ps(out + block + i, q); }
    OAR_AVX2_INLINE void scale_block(__m256 d) {
        for (int k = 0; k < 32; k += 8)
            _mm256_storeu_ps(out + block + k, _mm256_mul_ps(d, _mm256_loadu_ps(out + block + k)));
    }
};

template <class Sink>
OAR_AVX2_INLINE void q8_0_weights(const std::byte* b, Sink& sink) {
    for (int k = 0; k < 4; ++k)
        sink.quants(8 * k, _mm256_cvtepi32_ps(
                               _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + 8 * k)))));
    sink.scale_block(_mm256_set1_ps(half_avx(b)));
}

template <class Sink>
OAR_AVX2_INLINE void q4_0_weights(const std::byte* b, Sink& sink) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
    const __m128i mask = _mm_set1_epi8(0xF), eight = _mm_set1_epi8(8);
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, mask), eight);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), mask), eight);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; ++k) sink.quants(8 * k, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[k])));
    sink.scale_block(_mm256_set1_ps(half_avx(b)));
}

// Q4_K and Q5_K: a sub-block's 32 weights are scale * q - min, q from the low or high nibbles of 32
// bytes (plus Q5_K's fifth bit), computed per 8 as an FMA.
template <bool five_bits, class Sink>
OAR_AVX2_INLINE void k4_weights(const std::byte* b, Sink& sink) {
    float scales[8], mins[8];
    k4_scales(bytes_at(b + 4), half_avx(b), half_avx(b + 2), scales, mins);
    const std::uint8_t* qh = bytes_at(b + 16);
    const std::uint8_t* q = bytes_at(b + (five_bits ? 48 : 16));
    const __m256i low4 = _mm256_set1_epi32(0xF), one = _mm256_set1_epi32(1);
    for (int sub = 0; sub < 8; ++sub) {
        const __m256 scale = _mm256_set1_ps(scales[sub]), min = _mm256_set1_ps(mins[sub]);
        const std::uint8_t* bytes = q + 32 * (sub / 2);
        const int shift = sub % 2 == 0 ? 0 : 4;
        for (int k = 0; k < 4; ++k) {
            __m256i v = _mm256_and_si256(_mm256_srli_epi32(bytes8(bytes + 8 * k), shift), low4);
            if constexpr (five_bits) {
                const __m256i h = bytes8(qh + 8 * k);
                v = _mm256_add_epi32(v, _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, sub), one), 4));
            }
            sink(32 * sub + 8 * k, _mm256_fmsub_ps(scale, _mm256_cvtepi32_ps(v), min));
        }
    }
}

// Q6_K: per half of 128 weights, four groups of 32 read from the same 64 low-nibble and 32 high-bit
// bytes; 8 weights of a group share one int8 scale.
template <class Sink>
OAR_AVX2_INLINE void q6_k_weights(const std::byte* b, Sink& sink) {
    const float d = half_avx(b + 208);
    const __m256i low4 = _mm256_set1_epi32(0xF), three = _mm256_set1_epi32(3), bias = _mm256_set1_epi32(32);
    for (int half = 0; half < 2; ++half) {
        const std::uint8_t* ql = bytes_at(b) + 64 * half;
        const std::uint8_t* qh = bytes_at(b + 128) + 32 * half;
        const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192) + 8 * half;
        for (int l = 0; l < 32; l += 8) {
            const __m256i a = bytes8(ql + l), c = bytes8(ql + l + 32), h = bytes8(qh + l);
            const __m256i lows[4] = {_mm256_and_si256(a, low4), _mm256_and_si256(c, low4), _mm256_srli_epi32(a, 4),
                                     _mm256_srli_epi32(c, 4)};
            for (int g = 0; g < 4; ++g) {
                const __m256i high = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, 2 * g), three), 4);
                const __m256i v = _mm256_sub_epi32(_mm256_or_si256(lows[g], high), bias);
                const __m256 scale = _mm256_set1_ps(d * static_cast<float>(sc[l / 16 + 2 * g]));
                sink(128 * half + 32 * g + l, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(v)));
            }
        }
    }
}

// A row's blocks through a sink.
template <DType D, class Sink>
OAR_AVX2_INLINE void row_weights(const std::byte* row, std::size_t n, Sink& sink) {
    const std::size_t elements = block_elements(D), bytes = block_bytes(D);
    for (sink.block = 0; sink.block < n; sink.block += elements, row += bytes) {
        _mm_prefetch(reinterpret_cast<const char*>(row) + 1024, _MM_HINT_T0);
        if constexpr (D == DType::q8_0) q8_0_weights(row, sink);
        if constexpr (D == DType::q4_0) q4_0_weights(row, sink);
        if constexpr (D == DType::q4_k) k4_weights<false>(row, sink);
        if constexpr (D == DType::q5_k) k4_weights<true>(row, sink);
        if constexpr (D == DType::q6_k) q6_k_weights(row, sink);
    }
}

template <DType D>
OAR_AVX2 float dot_blocks_avx2(const std::byte* row, const float* x, std::size_t n) {
    DotSink sink{x};
    row_weights<D>(row, n, sink);
    const __m256 acc = sink.acc;
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

template <DType D>
OAR_AVX2 void convert_blocks_avx2(const std::byte* row, float* out, std::size_t n) {
    StoreSink sink{out};
    row_weights<D>(row, n, sink);
}

float dot_blocks_avx2(DType dtype, const std::byte* row, const float* x, std::size_t n) {
    switch (dtype) {
        case DType::q8_0: return dot_blocks_avx2<DType::q8_0>(row, x, n);
        case DType::q4_0: return dot_blocks_avx2<DType::q4_0>(row, x, n);
        case DType::q4_k: return dot_blocks_avx2<DType::q4_k>(row, x, n);
        case DType::q5_k: return dot_blocks_avx2<DType::q5_k>(row, x, n);
        case DType::q6_k: return dot_blocks_avx2<DType::q6_k>(row, x, n);
        default: return 0;
    }
}

void convert_blocks_avx2(DType dtype, const std::byte* row, float* out, std::size_t n) {
    switch (dtype) {
        case DType::q8_0: return convert_blocks_avx2<DType::q8_0>(row, out, n);
        case DType::q4_0: return convert_blocks_avx2<DType::q4_0>(row, out, n);
        case DType::q4_k: return convert_blocks_avx2<DType::q4_k>(row, out, n);
        case DType::q5_k: return convert_blocks_avx2<DType::q5_k>(row, out, n);
        case DType::q6_k: return convert_blocks_avx2<DType::q6_k>(row, out, n);
        default: return;
    }
}
#endif

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
#if defined(__x86_64__)
    if (using_avx2()) return convert_blocks_avx2(dtype, row, out, n);
#endif
    const BlockFn widen = block_fn(dtype);
    const std::size_t elements = block_elements(dtype), bytes = block_bytes(dtype);
    for (std::size_t i = 0; i < n; i += elements, row += bytes) widen(row, out + i);
}

float dot_blocks(DType dtype, const std::byte* row, const float* x, std::size_t n) {
#if defined(__x86_64__)
    if (using_avx2()) return dot_blocks_avx2(dtype, row, x, n);
#endif
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
