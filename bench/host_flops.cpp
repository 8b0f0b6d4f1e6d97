#include "host_flops.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace bench {

namespace {

constexpr long iterations = 20'000'000;
constexpr int chains = 12;  // independent accumulators: enough to cover the multiply-add latency on two units

#if defined(__x86_64__)
// Returns the flops done; the sum of the accumulators goes to `sink` so that none is optimized away.
__attribute__((target("avx2,fma"))) double run_avx2(float& sink) {
    __m256 acc[chains];
    for (int k = 0; k < chains; ++k) acc[k] = _mm256_set1_ps(static_cast<float>(k));
    const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iterations; ++i)
#pragma GCC unroll 12
        for (int k = 0; k < chains; ++k) acc[k] = _mm256_fmadd_ps(acc[k], m, a);
    __m256 sum = acc[0];
    for (int k = 1; k < chains; ++k) sum = _mm256_add_ps(sum, acc[k]);
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    sink = 0;
    for (const float v : lanes) sink += v;  // every lane, so that no accumulator's work can be dropped
    return 2.0 * 8 * chains * static_cast<double>(iterations);
}

// g++ 12 reports the _mm512_undefined_ps() inside its own AVX-512 headers as an uninitialized read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
__attribute__((target("avx512f"))) double run_avx512(float& sink) {
    __m512 acc[chains];
    for (int k = 0; k < chains; ++k) acc[k] = _mm512_set1_ps(static_cast<float>(k));
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < iterations; ++i)
#pragma GCC unroll 12
        for (int k = 0; k < chains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], m, a);
    __m512 sum = acc[0];
    for (int k = 1; k < chains; ++k) sum = _mm512_add_ps(sum, acc[k]);
    sink = _mm512_reduce_add_ps(sum);
    return 2.0 * 16 * chains * static_cast<double>(iterations);
}
#pragma GCC diagnostic pop
#endif

#if defined(__x86_64__)
// The same for byte products: maddubs multiplies 32 (64) byte pairs and adds neighbours, madd adds those
// into 32-bit lanes, an add accumulates. Returns the operations done.
__attribute__((target("avx2"))) double run_int8_avx2(float& sink) {
    __m256i acc[chains];
    for (int k = 0; k < chains; ++k) acc[k] = _mm256_set1_epi32(k);
    const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
    for (long i = 0; i < iterations; ++i)
#pragma GCC unroll 12
        for (int k = 0; k < chains; ++k)
            acc[k] =
                _mm256_add_epi32(acc[k], _mm256_madd_epi16(_mm256_maddubs_epi16(a, _mm256_xor_si256(b, acc[k])), ones));
    __m256i sum = acc[0];
    for (int k = 1; k < chains; ++k) sum = _mm256_add_epi32(sum, acc[k]);
    sink = static_cast<float>(_mm256_extract_epi32(sum, 0) + _mm256_extract_epi32(sum, 7));
    return 2.0 * 32 * chains * static_cast<double>(iterations);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"  // as for run_avx512
__attribute__((target("avx512f,avx512bw"))) double run_int8_avx512(float& sink) {
    __m512i acc[chains];
    for (int k = 0; k < chains; ++k) acc[k] = _mm512_set1_epi32(k);
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2), ones = _mm512_set1_epi16(1);
    for (long i = 0; i < iterations; ++i)
#pragma GCC unroll 12
        for (int k = 0; k < chains; ++k)
            acc[k] =
                _mm512_add_epi32(acc[k], _mm512_madd_epi16(_mm512_maddubs_epi16(a, _mm512_xor_si512(b, acc[k])), ones));
    __m512i sum = acc[0];
    for (int k = 1; k < chains; ++k) sum = _mm512_add_epi32(sum, acc[k]);
    sink = static_cast<float>(_mm512_reduce_add_epi32(sum));
    return 2.0 * 64 * chains * static_cast<double>(iterations);
}
#pragma GCC diagnostic pop
#endif

double run_portable(float& sink) {
    float acc[chains];
    for (int k = 0; k < chains; ++k) acc[k] = static_cast<float>(k);
    for (long i = 0; i < iterations; ++i)
        for (float& v : acc) v = v * 0.999999f + 1e-7f;
    sink = 0;
    for (const float v : acc) sink += v;
    return 2.0 * chains * static_cast<double>(iterations);
}

double run_int8_portable(float& sink) {
    std::int32_t acc[chains];
    for (int k = 0; k < chains; ++k) acc[k] = k;
    for (long i = 0; i < iterations; ++i)
        for (auto& v : acc) v += 3 * static_cast<std::int8_t>(v ^ 0x5a);
    sink = 0;
    for (const auto v : acc) sink += static_cast<float>(v);
    return 2.0 * chains * static_cast<double>(iterations);
}

double run_int8(float& sink) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512bw")) return run_int8_avx512(sink);
    if (__builtin_cpu_supports("avx2")) return run_int8_avx2(sink);
#endif
    return run_int8_portable(sink);
}

double run(float& sink) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return run_avx512(sink);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return run_avx2(sink);
#endif
    return run_portable(sink);
}

// Every thread of the pool running `kernel`, best of three passes, in G per second of what it returns.
// Each item times itself and the rates add up: a thread that starts late, or runs two items in turn,
// then lowers no one's rate (the cores are alike, so all of them together reach the sum).
double peak(runner::cpu::ThreadPool& pool, double (*kernel)(float&)) {
    double best = 0;
    for (int pass = 0; pass < 3; ++pass) {
        std::vector<double> rates(pool.size());
        std::atomic<float> sink{0};
        pool.parallel_for(rates.size(), [&](std::size_t begin, std::size_t end) {
            for (std::size_t i = begin; i < end; ++i) {
                float s = 0;
                const auto start = std::chrono::steady_clock::now();
                const double ops = kernel(s);
                rates[i] = ops / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                sink.store(s);
            }
        });
        double sum = 0;
        for (const double r : rates) sum += r;
        best = std::max(best, sum / 1e9);
    }
    return best;
}

}  // namespace

double peak_f32_gflops(runner::cpu::ThreadPool& pool) { return peak(pool, run); }

double peak_int8_gops(runner::cpu::ThreadPool& pool) { return peak(pool, run_int8); }

}  // namespace bench
