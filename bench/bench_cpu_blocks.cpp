// One token's product over GGUF's block types and our q8/q4 on the CPU (the decode step's matrix-vector
// work), against the bound of reading the matrix from RAM once: each type's matrix is 512 MiB of random
// blocks with sane scales (far beyond the caches), multiplied by one activation vector on every thread,
// best of five. BF16 beside them, read by the kernels the safetensors models use. Quantized rows on
// 8-bit activations (the default; AVX2 and portable) and on f32 ones (the exact path).
//
// usage: bench_cpu_blocks [MiB]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "host_flops.h"
#include "runner/backend/cpu/int8_dot.h"
#include "runner/backend/cpu/ops.h"
#include "runner/backend/cpu/simd.h"
#include "runner/selftest/host_read.h"

namespace {

// Where each block type keeps its f16 scales, and a scale that keeps the weights small.
struct Scales {
    std::size_t d, dmin;  // dmin 0: none
};

Scales scales_of(runner::DType t) {
    switch (t) {
        case runner::DType::q6_k: return {208, 0};
        case runner::DType::q4_k:
        case runner::DType::q5_k: return {0, 2};
        default: return {0, 0};
    }
}

std::vector<std::byte> random_matrix(runner::DType type, std::size_t bytes, std::mt19937_64& rng) {
    std::vector<std::byte> m(bytes);
    for (std::size_t i = 0; i + 8 <= bytes; i += 8) {
        const std::uint64_t v = rng();
        std::memcpy(m.data() + i, &v, 8);
    }
    const std::uint16_t small = 0x1400;  // f16 2^-10
    if (!runner::is_block_type(type)) {
        for (std::size_t i = 0; i + 2 <= bytes; i += 2) std::memcpy(m.data() + i, &small, 2);  // bf16/f16: finite
        return m;
    }
    const auto s = scales_of(type);
    for (std::size_t b = 0; b + runner::block_bytes(type) <= bytes; b += runner::block_bytes(type)) {
        std::memcpy(m.data() + b + s.d, &small, 2);
        if (s.dmin) std::memcpy(m.data() + b + s.dmin, &small, 2);
    }
    return m;
}

// One token's product with m on each path, best of five, against the RAM bound.
void measure(const char* name, const runner::cpu::Matrix& m, bool quantized, runner::cpu::ThreadPool& pool,
             double bound) {
    std::vector<float> x(m.cols(), 0.01f), out(m.rows());
    // (int8 activations, portable kernels)
    for (const auto& [int8, portable] : {std::pair{true, false}, std::pair{false, false}, std::pair{true, true}}) {
        if (int8 && !quantized) continue;
        runner::cpu::use_int8_products(int8);
        runner::cpu::force_portable(portable);
        double best = 1e30;
        for (int rep = 0; rep < 5; ++rep) {
            const auto t0 = std::chrono::steady_clock::now();
            runner::cpu::matmul(out.data(), x.data(), m, nullptr, 1, pool);
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        const double gbs = static_cast<double>(m.bytes()) / best / 1e9;
        const std::string path =
            std::string(int8 ? "int8 " : "f32 ") + (portable || !runner::cpu::using_avx2() ? "portable" : "AVX2");
        std::printf("%-6s %-19s %8zu %10.1f %9.1f %9.0f%%\n", name, path.c_str(), m.bytes() >> 20, gbs, bound,
                    100 * gbs / bound);
    }
    runner::cpu::force_portable(false);
    runner::cpu::use_int8_products(true);
}

// A 64-token prompt's product with m on the vector paths (the integer tiles with AVX512-VNNI where the CPU
// has it, and without), best of three, against the peak multiply-add rate of its arithmetic: 8-bit for
// quantized rows' integer products, f32 for the float tiles.
void measure_prompt(const char* name, const runner::cpu::Matrix& m, bool quantized, runner::cpu::ThreadPool& pool,
                    double f32_peak, double int8_peak) {
    constexpr std::size_t tokens = 64;
    std::vector<float> x(tokens * m.cols(), 0.01f), out(tokens * m.rows());
    for (const auto& [int8, vnni] : {std::pair{true, true}, std::pair{true, false}, std::pair{false, false}}) {
        if ((int8 && !quantized) || (vnni && !runner::cpu::using_vnni())) continue;
        runner::cpu::use_int8_products(int8);
        runner::cpu::force_no_vnni(!vnni);
        double best = 1e30;
        for (int rep = 0; rep < 3; ++rep) {
            const auto t0 = std::chrono::steady_clock::now();
            runner::cpu::matmul(out.data(), x.data(), m, nullptr, tokens, pool);
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        const double gops = 2.0 * tokens * static_cast<double>(m.rows() * m.cols()) / best / 1e9;
        const double bound = int8 ? int8_peak : f32_peak;
        const char* path = !int8 ? "f32 AVX2" : vnni ? "int8 AVX2+VNNI" : "int8 AVX2";
        std::printf("%-6s %-19s %10.1f %10.1f %9.0f%%\n", name, path, gops, bound, 100 * gops / bound);
    }
    runner::cpu::force_no_vnni(false);
    runner::cpu::use_int8_products(true);
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t mib = argc > 1 ? static_cast<std::size_t>(std::atoi(argv[1])) : 512;
    const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    runner::cpu::ThreadPool pool(threads);
    const std::vector<std::byte> buffer(std::size_t{1} << 30, std::byte{1});
    const double bound = runner::selftest::best_read(pool, buffer).gbs;
    std::printf("host RAM read, %u threads: %.1f GB/s (the bound: every byte of the matrix read once)\n\n", threads,
                bound);
    std::printf("%-6s %-19s %8s %10s %9s %10s\n", "type", "path (activations)", "MiB", "GB/s", "bound", "achieved");
    std::mt19937_64 rng(42);
    const std::size_t cols = 4096;
    for (const auto type : {runner::DType::bf16, runner::DType::q8_0, runner::DType::q4_0, runner::DType::q4_k,
                            runner::DType::q5_k, runner::DType::q6_k}) {
        const std::size_t row = runner::row_bytes(type, cols), rows = (mib << 20) / row;
        const auto data = random_matrix(type, rows * row, rng);
        runner::TensorView view;
        view.dtype = type;
        view.shape = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
        view.data = data.data();
        view.bytes = data.size();
        measure(runner::dtype_name(type), view, runner::is_block_type(type), pool, bound);
    }
    // Our q8 and q4, as a compressed split layer's host rows hold them: random quants, small scales.
    for (const auto& [type, name] :
         {std::pair{runner::WeightType::q8, "q8"}, std::pair{runner::WeightType::q4, "q4"}}) {
        const std::size_t rows = (mib << 20) / runner::quant_bytes(type, 1, cols);
        auto data = random_matrix(runner::DType::f32, runner::quant_bytes(type, rows, cols), rng);
        auto* scales = reinterpret_cast<float*>(data.data() + runner::quant_scales_offset(type, rows, cols));
        std::fill_n(scales, rows * cols / runner::quant_block, 1e-3f);
        measure(name, runner::cpu::Matrix(data.data(), type, rows, cols), true, pool, bound);
    }
    if (!runner::cpu::using_avx2()) return 0;
    const double f32_peak = bench::peak_f32_gflops(pool), int8_peak = bench::peak_int8_gops(pool);
    std::printf(
        "\nprompt products, 64 tokens by 4096 x 4096 (GOP/s: a multiply-add is two), against the peak\n"
        "multiply-add rate of the arithmetic each path uses (f32 %.0f, 8-bit integer %.0f GOP/s)\n\n",
        f32_peak, int8_peak);
    std::printf("%-6s %-19s %10s %10s %10s\n", "type", "path (activations)", "GOP/s", "bound", "achieved");
    for (const auto type : {runner::DType::bf16, runner::DType::q8_0, runner::DType::q4_0, runner::DType::q4_k,
                            runner::DType::q5_k, runner::DType::q6_k}) {
        const std::size_t rows = 4096;
        const auto data = random_matrix(type, rows * runner::row_bytes(type, cols), rng);
        runner::TensorView view;
        view.dtype = type;
        view.shape = {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols)};
        view.data = data.data();
        view.bytes = data.size();
        measure_prompt(runner::dtype_name(type), view, runner::is_block_type(type), pool, f32_peak, int8_peak);
    }
    return 0;
}
