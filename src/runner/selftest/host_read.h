// The host's RAM read rate: the bound for weights the CPU computes with. Measured with the threads
// the engine uses, over a buffer far larger than the caches.
#pragma once

#include <cstddef>
#include <span>

#include "runner/backend/cpu/thread_pool.h"

namespace runner::selftest {

// How a pass reads: each 1 MiB block as `streams` interleaved sequential streams, each prefetched
// `ahead` bytes in advance.
struct ReadPattern {
    int streams = 1;
    std::size_t ahead = 1024;
};

// One pass of all of `pool`'s threads over `data`: GB/s.
double read_pass_gbs(runner::cpu::ThreadPool& pool, std::span<const std::byte> data, ReadPattern pattern);

// The best rate over three passes of each pattern (1, 2, 4 and 8 streams, prefetched 1 or 2 KiB ahead,
// the decode kernels' distance among them), and the pattern that reached it. A bound is what the
// machine can reach: one stream per core leaves the memory bus partly idle on some hosts (83 against
// 121 GB/s on a 16-core H200 host), which the decode kernels, reading weight rows in pairs, do not.
struct HostRead {
    double gbs = 0;
    ReadPattern pattern;
};
HostRead best_read(runner::cpu::ThreadPool& pool, std::span<const std::byte> data);

}  // namespace runner::selftest
