#include "runner/backend/cpu/simd.h"

#include "runner/backend/cpu/block_quants.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace runner::cpu {

namespace {

bool portable_forced = false;  // set only by tests, before any kernel runs

#if defined(__x86_64__)
bool cpu_has_avx2() {
    static const bool has =
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    return has;
}

__attribute__((target("avx2,fma,f16c"), always_inline)) inline __m256 load8(DType dtype, const std::byte* row,
                                                                            std::size_t i) {
    switch (dtype) {
        case DType::f32: return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
        case DType::f16:
            return _mm256_cvtph_ps(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const std::uint16_t*>(row) + i)));
        case DType::bf16: {
            const __m128i h =
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const std::uint16_t*>(row) + i));
            return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
        }
        default: break;  // block types go through block_quants
    }
    return _mm256_setzero_ps();
}

__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
    const __m128 lo = _mm256_castps256_ps128(v);
    const __m128 hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

// Prefetches the cache line (two for f32) that starts row_prefetch_bytes past element i of a row, for
// a loop that takes 32 elements a step. A prefetch never faults, so reaching past the row's end is
// harmless.
template <DType D>
__attribute__((always_inline)) inline void prefetch_row(const std::byte* row, std::size_t i) {
    const auto* at = reinterpret_cast<const char*>(row + i * (D == DType::f32 ? 4 : 2) + row_prefetch_bytes);
    _mm_prefetch(at, _MM_HINT_T0);
    if constexpr (D == DType::f32) _mm_prefetch(at + 64, _MM_HINT_T0);
}

// The scalar tails below multiply and add with one rounding (std::fma) in every loop, so the compiler's
// choice to contract an a * b + c or not, which differs between loops and optimization levels, cannot
// make dot_row and dot_rows2 disagree.
//
// One loop per dtype, so that the conversion is decided once per row, with four accumulators to
// cover the FMA latency.
template <DType D>
__attribute__((target("avx2,fma,f16c"))) float dot_row_avx2_t(const std::byte* row, const float* x, std::size_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
           acc3 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        prefetch_row<D>(row, i);
        acc0 = _mm256_fmadd_ps(load8(D, row, i), _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(load8(D, row, i + 8), _mm256_loadu_ps(x + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load8(D, row, i + 16), _mm256_loadu_ps(x + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load8(D, row, i + 24), _mm256_loadu_ps(x + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load8(D, row, i), _mm256_loadu_ps(x + i), acc0);
    float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; ++i) {
        float w = 0;
        convert_row(D, row + i * dtype_size(D), &w, 1);
        sum = std::fma(w, x[i], sum);
    }
    return sum;
}

// Two rows at once, each summed exactly as dot_row_avx2_t sums it (same accumulators, same order), so
// that a row's result does not depend on whether it was paired: the rows share every load of x, and
// each core keeps two weight streams in flight.
template <DType D>
__attribute__((target("avx2,fma,f16c"))) void dot_rows2_avx2_t(const std::byte* r0, const std::byte* r1, const float* x,
                                                               std::size_t n, float* out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        prefetch_row<D>(r0, i);
        prefetch_row<D>(r1, i);
        const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8), x2 = _mm256_loadu_ps(x + i + 16),
                     x3 = _mm256_loadu_ps(x + i + 24);
        a0 = _mm256_fmadd_ps(load8(D, r0, i), x0, a0);
        b0 = _mm256_fmadd_ps(load8(D, r1, i), x0, b0);
        a1 = _mm256_fmadd_ps(load8(D, r0, i + 8), x1, a1);
        b1 = _mm256_fmadd_ps(load8(D, r1, i + 8), x1, b1);
        a2 = _mm256_fmadd_ps(load8(D, r0, i + 16), x2, a2);
        b2 = _mm256_fmadd_ps(load8(D, r1, i + 16), x2, b2);
        a3 = _mm256_fmadd_ps(load8(D, r0, i + 24), x3, a3);
        b3 = _mm256_fmadd_ps(load8(D, r1, i + 24), x3, b3);
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i);
        a0 = _mm256_fmadd_ps(load8(D, r0, i), xv, a0);
        b0 = _mm256_fmadd_ps(load8(D, r1, i), xv, b0);
    }
    float sum0 = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    float sum1 = hsum(_mm256_add_ps(_mm256_add_ps(b0, b1), _mm256_add_ps(b2, b3)));
    for (; i < n; ++i) {
        float w0 = 0, w1 = 0;
        convert_row(D, r0 + i * dtype_size(D), &w0, 1);
        convert_row(D, r1 + i * dtype_size(D), &w1, 1);
        sum0 = std::fma(w0, x[i], sum0);
        sum1 = std::fma(w1, x[i], sum1);
    }
    out[0] = sum0;
    out[1] = sum1;
}

void dot_rows2_avx2(DType dtype, const std::byte* r0, const std::byte* r1, const float* x, std::size_t n, float* out) {
    switch (dtype) {
        case DType::f32: return dot_rows2_avx2_t<DType::f32>(r0, r1, x, n, out);
        case DType::f16: return dot_rows2_avx2_t<DType::f16>(r0, r1, x, n, out);
        case DType::bf16: return dot_rows2_avx2_t<DType::bf16>(r0, r1, x, n, out);
        default: break;
    }
}

float dot_row_avx2(DType dtype, const std::byte* row, const float* x, std::size_t n) {
    switch (dtype) {
        case DType::f32: return dot_row_avx2_t<DType::f32>(row, x, n);
        case DType::f16: return dot_row_avx2_t<DType::f16>(row, x, n);
        case DType::bf16: return dot_row_avx2_t<DType::bf16>(row, x, n);
        default: break;
    }
    return 0;
}

__attribute__((target("avx2,fma,f16c"))) void convert_row_avx2(DType dtype, const std::byte* row, float* out,
                                                               std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load8(dtype, row, i));
    for (; i < n; ++i) convert_row(dtype, row + i * dtype_size(dtype), out + i, 1);
}

__attribute__((target("avx2,fma"))) void axpy_f32_avx2(float a, const float* x, float* acc, std::size_t n) {
    const __m256 va = _mm256_set1_ps(a);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(acc + i)));
    for (; i < n; ++i) acc[i] += a * x[i];
}

__attribute__((target("avx2,fma"))) float dot_f32_avx2(const float* a, const float* b, std::size_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float sum = hsum(_mm256_add_ps(acc0, acc1));
    for (; i < n; ++i) sum += a[i] * b[i];
    return sum;
}

// One accumulator per (row, token), eight lanes wide, over the elements in order, then the lanes' sum
// and the tail: the order dot_tile_f32 promises for every tile size. R rows by T tokens, 12 accumulators
// at most, so that they, a row's three vectors and one of x fit in the 16 registers.
template <std::size_t R, std::size_t T>
__attribute__((target("avx2,fma"))) void dot_tile_avx2_t(const float* rows, const float* x, std::size_t x_stride,
                                                         std::size_t n, float* out) {
    // The loops over R and T unrolled in full, so that the accumulators live in registers, not on the stack.
    __m256 acc[R][T];
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (std::size_t t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 w[R];
#pragma GCC unroll 4
        for (std::size_t r = 0; r < R; ++r) w[r] = _mm256_loadu_ps(rows + r * n + i);
#pragma GCC unroll 4
        for (std::size_t t = 0; t < T; ++t) {
            const __m256 xv = _mm256_loadu_ps(x + t * x_stride + i);
#pragma GCC unroll 4
            for (std::size_t r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(w[r], xv, acc[r][t]);
        }
    }
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t t = 0; t < T; ++t) {
            float sum = hsum(acc[r][t]);
            for (std::size_t k = i; k < n; ++k) sum = std::fma(rows[r * n + k], x[t * x_stride + k], sum);
            out[r * tile_tokens + t] = sum;
        }
}

template <std::size_t R>
void dot_tile_avx2_rows(const float* rows, const float* x, std::size_t x_stride, std::size_t n_tokens, std::size_t n,
                        float* out) {
    switch (n_tokens) {
        case 1: return dot_tile_avx2_t<R, 1>(rows, x, x_stride, n, out);
        case 2: return dot_tile_avx2_t<R, 2>(rows, x, x_stride, n, out);
        case 3: return dot_tile_avx2_t<R, 3>(rows, x, x_stride, n, out);
        default: return dot_tile_avx2_t<R, 4>(rows, x, x_stride, n, out);
    }
}

// The kernel's loops unroll in full up to 4 (#pragma GCC unroll 4), and the dispatch below knows no more.
static_assert(tile_rows <= 4 && tile_tokens <= 4);

void dot_tile_avx2(const float* rows, std::size_t n_rows, const float* x, std::size_t x_stride, std::size_t n_tokens,
                   std::size_t n, float* out) {
    switch (n_rows) {
        case 1: return dot_tile_avx2_rows<1>(rows, x, x_stride, n_tokens, n, out);
        case 2: return dot_tile_avx2_rows<2>(rows, x, x_stride, n_tokens, n, out);
        default: return dot_tile_avx2_rows<3>(rows, x, x_stride, n_tokens, n, out);
    }
}

// Quantized rows: a block of quant_block weights at a time, its four vectors summed in two chains and
// scaled into the row's one accumulator; the blocks' chains overlap.
constexpr std::size_t quant_step = quant_block;
static_assert(quant_step == 32, "the block loads below take 32 weights");

template <WeightType T>
__attribute__((always_inline)) inline void prefetch_qrow(const std::byte* quants, std::size_t i) {
    _mm_prefetch(reinterpret_cast<const char*>(quants + (T == WeightType::q8 ? i : i / 2) + row_prefetch_bytes),
                 _MM_HINT_T0);
}

// Eight int8 at `at`, or the low eight uint8 of v, as f32.
__attribute__((target("avx2"), always_inline)) inline __m256 widen_i8(const std::byte* at) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(at))));
}
__attribute__((target("avx2"), always_inline)) inline __m256 widen_u8(__m128i v) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
}

// A q4 block's 16 bytes at element i split into its low nibbles (the even elements) and its high ones
// (the odd), each as 16 bytes of 0-15.
struct Nibbles {
    __m128i lo, hi;
};
__attribute__((target("avx2"), always_inline)) inline Nibbles q4_nibbles(const std::byte* quants, std::size_t i) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(quants + i / 2));
    const __m128i mask = _mm_set1_epi8(0x0f);
    return {_mm_and_si128(packed, mask), _mm_and_si128(_mm_srli_epi16(packed, 4), mask)};
}

// The block of 32 weights at element i as four vectors of eight f32 in element order, not yet scaled.
// q4's nibbles are interleaved back into order and offset by the stored 8.
template <WeightType T>
__attribute__((target("avx2,fma"), always_inline)) inline void load_qblock(const std::byte* quants, std::size_t i,
                                                                           __m256* w) {
    if constexpr (T == WeightType::q8) {
#pragma GCC unroll 4
        for (std::size_t k = 0; k < 4; ++k) w[k] = widen_i8(quants + i + 8 * k);
    } else {
        const auto [lo, hi] = q4_nibbles(quants, i);
        const __m128i eight = _mm_set1_epi8(8);
        const __m128i first = _mm_sub_epi8(_mm_unpacklo_epi8(lo, hi), eight);
        const __m128i second = _mm_sub_epi8(_mm_unpackhi_epi8(lo, hi), eight);
        w[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(first));
        w[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(first, 8)));
        w[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(second));
        w[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(second, 8)));
    }
}

// The block at element i against its activations x (for q4, the block's q4_activations), unscaled. q4's
// nibbles are used as they lie: x holds the even elements first, and a bias for the + 8.
template <WeightType T>
__attribute__((target("avx2,fma"), always_inline)) inline __m256 qblock_sum(const std::byte* quants, std::size_t i,
                                                                            const float* x) {
    __m256 p0, p1;
    if constexpr (T == WeightType::q8) {
        __m256 w[4];
        load_qblock<T>(quants, i, w);
        p0 = _mm256_mul_ps(w[0], _mm256_loadu_ps(x));
        p1 = _mm256_mul_ps(w[1], _mm256_loadu_ps(x + 8));
        p0 = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(x + 16), p0);
        p1 = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(x + 24), p1);
    } else {
        const auto [lo, hi] = q4_nibbles(quants, i);
        p0 = _mm256_fmadd_ps(widen_u8(lo), _mm256_loadu_ps(x), _mm256_loadu_ps(x + 32));
        p1 = _mm256_mul_ps(widen_u8(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(x + 8));
        p0 = _mm256_fmadd_ps(widen_u8(hi), _mm256_loadu_ps(x + 16), p0);
        p1 = _mm256_fmadd_ps(widen_u8(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(x + 24), p1);
    }
    return _mm256_add_ps(p0, p1);
}

// Where block i's activations start.
template <WeightType T>
constexpr std::size_t block_x(std::size_t i) {
    return T == WeightType::q8 ? i : i / quant_step * q4_block_activations;
}

template <WeightType T>
__attribute__((target("avx2,fma"))) float dot_qrow_avx2_t(QuantRow row, const float* x, std::size_t n) {
    __m256 acc = _mm256_setzero_ps();
    for (std::size_t i = 0; i < n; i += quant_step) {
        prefetch_qrow<T>(row.quants, i);
        acc = _mm256_fmadd_ps(qblock_sum<T>(row.quants, i, x + block_x<T>(i)),
                              _mm256_set1_ps(row.scales[i / quant_step]), acc);
    }
    return hsum(acc);
}

// Two rows, each summed as dot_qrow_avx2_t sums it, sharing the activations' cache lines.
template <WeightType T>
__attribute__((target("avx2,fma"))) void dot_qrows2_avx2_t(QuantRow r0, QuantRow r1, const float* x, std::size_t n,
                                                           float* out) {
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    for (std::size_t i = 0; i < n; i += quant_step) {
        prefetch_qrow<T>(r0.quants, i);
        prefetch_qrow<T>(r1.quants, i);
        const float* xi = x + block_x<T>(i);
        a = _mm256_fmadd_ps(qblock_sum<T>(r0.quants, i, xi), _mm256_set1_ps(r0.scales[i / quant_step]), a);
        b = _mm256_fmadd_ps(qblock_sum<T>(r1.quants, i, xi), _mm256_set1_ps(r1.scales[i / quant_step]), b);
    }
    out[0] = hsum(a);
    out[1] = hsum(b);
}

template <WeightType T>
__attribute__((target("avx2,fma"))) void convert_qrow_avx2_t(QuantRow row, float* out, std::size_t n) {
    for (std::size_t i = 0; i < n; i += quant_step) {
        __m256 w[4];
        load_qblock<T>(row.quants, i, w);
        const __m256 scale = _mm256_set1_ps(row.scales[i / quant_step]);
#pragma GCC unroll 4
        for (std::size_t k = 0; k < 4; ++k) _mm256_storeu_ps(out + i + 8 * k, _mm256_mul_ps(w[k], scale));
    }
}
#endif

bool avx2_active() {
#if defined(__x86_64__)
    return !portable_forced && cpu_has_avx2();
#else
    return false;
#endif
}

// The portable quantized paths: element i's quant as a number, unscaled.
float quant_at(WeightType type, const std::byte* quants, std::size_t i) {
    if (type == WeightType::q8) return static_cast<float>(static_cast<std::int8_t>(quants[i]));
    const auto byte = static_cast<unsigned>(quants[i / 2]);
    return static_cast<float>(static_cast<int>(i % 2 == 0 ? byte & 0xfu : byte >> 4) - 8);
}

float dot_qrow_portable(WeightType type, QuantRow row, const float* x, std::size_t n) {
    float sum = 0;
    for (std::size_t i = 0; i < n; i += quant_block) {
        float block = 0;
        if (type == WeightType::q8) {
            for (std::size_t k = i; k < i + quant_block; ++k) block += quant_at(type, row.quants, k) * x[k];
        } else {
            const float* xb = x + i / quant_block * q4_block_activations;
            for (std::size_t k = 0; k < quant_block / 2; ++k) {
                const auto byte = static_cast<unsigned>(row.quants[i / 2 + k]);
                block += static_cast<float>(byte & 0xfu) * xb[k] + static_cast<float>(byte >> 4) * xb[16 + k];
            }
            for (std::size_t k = 32; k < q4_block_activations; ++k) block += xb[k];
        }
        sum = std::fma(block, row.scales[i / quant_block], sum);
    }
    return sum;
}

}  // namespace

float bf16_to_f32(std::uint16_t v) {
    const std::uint32_t bits = std::uint32_t(v) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

float f16_to_f32(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000) << 16;
    std::uint32_t exp = (h >> 10) & 0x1f;
    std::uint32_t mant = h & 0x3ff;
    std::uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                --exp;
            }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

void convert_row(DType dtype, const std::byte* row, float* out, std::size_t n) {
    if (is_block_type(dtype)) return convert_blocks(dtype, row, out, n);
#if defined(__x86_64__)
    if (n >= 8 && avx2_active()) return convert_row_avx2(dtype, row, out, n);
#endif
    for (std::size_t i = 0; i < n; ++i) {
        switch (dtype) {
            case DType::f32: std::memcpy(out + i, row + 4 * i, 4); break;
            case DType::f16: {
                std::uint16_t v;
                std::memcpy(&v, row + 2 * i, 2);
                out[i] = f16_to_f32(v);
                break;
            }
            case DType::bf16: {
                std::uint16_t v;
                std::memcpy(&v, row + 2 * i, 2);
                out[i] = bf16_to_f32(v);
                break;
            }
            default: break;
        }
    }
}

float dot_row(DType dtype, const std::byte* row, const float* x, std::size_t n) {
    if (is_block_type(dtype)) return dot_blocks(dtype, row, x, n);
#if defined(__x86_64__)
    if (avx2_active()) return dot_row_avx2(dtype, row, x, n);
#endif
    float sum = 0;
    float w[64];
    for (std::size_t i = 0; i < n; i += 64) {
        const std::size_t m = std::min<std::size_t>(64, n - i);
        convert_row(dtype, row + i * dtype_size(dtype), w, m);
        for (std::size_t k = 0; k < m; ++k) sum += w[k] * x[i + k];
    }
    return sum;
}

void axpy_f32(float a, const float* x, float* acc, std::size_t n) {
#if defined(__x86_64__)
    if (avx2_active()) return axpy_f32_avx2(a, x, acc, n);
#endif
    for (std::size_t i = 0; i < n; ++i) acc[i] += a * x[i];
}

void dot_rows2(DType dtype, const std::byte* row0, const std::byte* row1, const float* x, std::size_t n, float* out) {
#if defined(__x86_64__)
    if (avx2_active() && !is_block_type(dtype)) return dot_rows2_avx2(dtype, row0, row1, x, n, out);
#endif
    out[0] = dot_row(dtype, row0, x, n);
    out[1] = dot_row(dtype, row1, x, n);
}

void q4_activations(const float* x, std::size_t n, float* out) {
    for (std::size_t i = 0; i < n; i += quant_block, out += q4_block_activations) {
        const float* xb = x + i;
        for (std::size_t k = 0; k < quant_block / 2; ++k) {
            out[k] = xb[2 * k];
            out[16 + k] = xb[2 * k + 1];
        }
        for (std::size_t lane = 0; lane < 8; ++lane)
            out[32 + lane] = -8.f * (xb[lane] + xb[8 + lane] + xb[16 + lane] + xb[24 + lane]);
    }
}

float dot_qrow(WeightType type, QuantRow row, const float* x, std::size_t n) {
#if defined(__x86_64__)
    if (avx2_active())
        return type == WeightType::q4 ? dot_qrow_avx2_t<WeightType::q4>(row, x, n)
                                      : dot_qrow_avx2_t<WeightType::q8>(row, x, n);
#endif
    return dot_qrow_portable(type, row, x, n);
}

void dot_qrows2(WeightType type, QuantRow row0, QuantRow row1, const float* x, std::size_t n, float* out) {
#if defined(__x86_64__)
    if (avx2_active())
        return type == WeightType::q4 ? dot_qrows2_avx2_t<WeightType::q4>(row0, row1, x, n, out)
                                      : dot_qrows2_avx2_t<WeightType::q8>(row0, row1, x, n, out);
#endif
    out[0] = dot_qrow_portable(type, row0, x, n);
    out[1] = dot_qrow_portable(type, row1, x, n);
}

void convert_qrow(WeightType type, QuantRow row, float* out, std::size_t n) {
#if defined(__x86_64__)
    if (avx2_active())
        return type == WeightType::q4 ? convert_qrow_avx2_t<WeightType::q4>(row, out, n)
                                      : convert_qrow_avx2_t<WeightType::q8>(row, out, n);
#endif
    for (std::size_t i = 0; i < n; ++i) out[i] = quant_at(type, row.quants, i) * row.scales[i / quant_block];
}

float dot_f32(const float* a, const float* b, std::size_t n) {
#if defined(__x86_64__)
    if (avx2_active()) return dot_f32_avx2(a, b, n);
#endif
    float sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += a[i] * b[i];
    return sum;
}

void dot_tile_f32(const float* rows, std::size_t n_rows, const float* x, std::size_t x_stride, std::size_t n_tokens,
                  std::size_t n, float* out) {
    if (n_rows == 0 || n_tokens == 0) return;
#if defined(__x86_64__)
    if (avx2_active()) return dot_tile_avx2(rows, n_rows, x, x_stride, n_tokens, n, out);
#endif
    for (std::size_t r = 0; r < n_rows; ++r)
        for (std::size_t t = 0; t < n_tokens; ++t) {
            float sum = 0;
            for (std::size_t k = 0; k < n; ++k) sum += rows[r * n + k] * x[t * x_stride + k];
            out[r * tile_tokens + t] = sum;
        }
}

bool using_avx2() { return avx2_active(); }

void force_portable(bool portable) { portable_forced = portable; }

}  // namespace runner::cpu
