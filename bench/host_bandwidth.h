// The host's RAM read rate: the bound for weights the CPU computes with. Measured with the threads
// the engine uses, over a buffer far larger than the caches.
#pragma once

#include <cstddef>
#include <span>

#include "runner/backend/cpu/thread_pool.h"

namespace bench {

// One pass of all of `pool`'s threads over `data`, each 1 MiB block read as `streams` interleaved
// sequential streams with software prefetch: GB/s.
double read_pass_gbs(runner::cpu::ThreadPool& pool, std::span<const std::byte> data, int streams);

// The best rate over three passes each with 1, 2, 4 and 8 streams per block, and the stream count
// that reached it. A bound is what the machine can reach: one stream per core leaves the memory bus
// partly idle on some hosts (83 against 121 GB/s on a 16-core H200 host), which the decode kernels,
// reading weight rows in pairs, do not.
struct HostRead {
    double gbs = 0;
    int streams = 1;
};
HostRead best_read(runner::cpu::ThreadPool& pool, std::span<const std::byte> data);

}  // namespace bench
