#include "runner/selftest/host_rates.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "runner/backend/cpu/ops.h"
#include "runner/selftest/host_read.h"
#include "runner/selftest/test_data.h"

namespace runner::selftest {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

double host_read_gbps(unsigned threads) {
    std::vector<std::byte> buffer(std::size_t{512} << 20, std::byte{1});  // written: real pages, not the zero page
    cpu::ThreadPool pool(threads);
    return best_read(pool, buffer).gbs;
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
