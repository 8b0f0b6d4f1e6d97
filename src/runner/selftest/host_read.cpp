#include "runner/selftest/host_read.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace runner::selftest {

namespace {

constexpr std::size_t block_bytes = std::size_t{1} << 20;
constexpr std::size_t line = 64;

}  // namespace

double read_pass_gbs(runner::cpu::ThreadPool& pool, std::span<const std::byte> data, ReadPattern pattern) {
    const std::size_t blocks = data.size() / block_bytes;
    const auto n_streams = static_cast<std::size_t>(std::max(1, pattern.streams));
    const std::size_t part = block_bytes / n_streams / line * line;  // whole lines, inside the block
    std::atomic<std::uint64_t> total{0};
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(blocks, [&](std::size_t begin, std::size_t end) {
        // Eight independent sums per line, so that the loop runs at the memory's pace, not the adder's.
        std::uint64_t acc[line / 8] = {};
        for (std::size_t b = begin; b < end; ++b) {
            const std::byte* block = data.data() + b * block_bytes;
            for (std::size_t i = 0; i < part; i += line)
                for (std::size_t s = 0; s < n_streams; ++s) {
                    const std::byte* at = block + s * part + i;
                    __builtin_prefetch(at + pattern.ahead);
                    std::uint64_t words[line / 8];
                    std::memcpy(words, at, line);
                    for (std::size_t k = 0; k < line / 8; ++k) acc[k] += words[k];
                }
        }
        std::uint64_t sum = 0;
        for (const auto a : acc) sum += a;
        total.fetch_add(sum, std::memory_order_relaxed);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (total.load() == 1) std::puts("");  // keeps the sums alive
    return static_cast<double>(blocks * part * n_streams) / seconds / 1e9;
}

HostRead best_read(runner::cpu::ThreadPool& pool, std::span<const std::byte> data) {
    HostRead best;
    for (const int streams : {1, 2, 4, 8})
        for (const std::size_t ahead : {1024, 2048})
            for (int pass = 0; pass < 3; ++pass) {
                const ReadPattern pattern{streams, ahead};
                const double gbs = read_pass_gbs(pool, data, pattern);
                if (gbs > best.gbs) best = {gbs, pattern};
            }
    return best;
}

}  // namespace runner::selftest
