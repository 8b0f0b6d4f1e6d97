#include "runner/selftest/host_rates.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "runner/backend/cpu/ops.h"
#include "runner/selftest/test_data.h"

namespace runner::selftest {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

double host_read_gbps() {
    constexpr std::size_t bytes = std::size_t{512} << 20;
    std::vector<std::uint64_t> buffer(bytes / 8);
    for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = i;  // touched: real pages, not the zero page
    cpu::ThreadPool pool(0);
    std::atomic<std::uint64_t> sink{0};
    double best = 0;
    for (int pass = 0; pass < 3; ++pass) {
        const auto start = Clock::now();
        pool.parallel_for(buffer.size(), [&](std::size_t begin, std::size_t end) {
            std::uint64_t a = 0, b = 0, c = 0, d = 0;
            std::size_t i = begin;
            for (; i + 4 <= end; i += 4) a += buffer[i], b ^= buffer[i + 1], c += buffer[i + 2], d ^= buffer[i + 3];
            for (; i < end; ++i) a += buffer[i];
            sink += a + b + c + d;
        });
        best = std::max(best, static_cast<double>(bytes) / seconds_since(start) / 1e9);
    }
    return sink.load() == 0 ? 0 : best;  // the sums are used, so the reads are not optimized away
}

double cpu_matrix_gflops() {
    constexpr std::size_t d_out = 2048, d_in = 2048, n_tokens = 64;
    std::mt19937 rng(1);
    const auto w = random_weights(rng, DType::bf16, d_out, d_in);
    const auto x = random_floats(rng, n_tokens * d_in);
    std::vector<float> out(n_tokens * d_out);
    cpu::ThreadPool pool(0);
    const cpu::Matrix m(view_of(w, DType::bf16, d_out, d_in));
    double best = 0;
    for (int pass = 0; pass < 3; ++pass) {
        const auto start = Clock::now();
        cpu::matmul(out.data(), x.data(), m, nullptr, n_tokens, pool);
        best = std::max(best, 2.0 * d_out * d_in * n_tokens / seconds_since(start) / 1e9);
    }
    return best;
}

}  // namespace runner::selftest
