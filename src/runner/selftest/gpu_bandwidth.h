// The GPU bandwidths the benchmarks' bounds are made of and selftest reports, measured with events on the
// machine at hand.
#pragma once

#include <cstddef>

namespace runner::selftest {

constexpr std::size_t copy_bytes = std::size_t{1} << 30;

// A 1 GiB pinned host->device copy.
double pinned_h2d_gbs();

// A 1 GiB device-to-device copy, read and write counted: the rate device memory moves bytes at,
// which decode's kernels (reads only) can reach too.
double device_copy_gbs();

}  // namespace runner::selftest
