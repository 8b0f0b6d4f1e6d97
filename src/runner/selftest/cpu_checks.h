// The CPU's vector kernels (AVX2) against its portable ones, on the same inputs: `selftest --device cpu`.
#pragma once

#include <vector>

#include "runner/selftest/kernel_check.h"

namespace runner::selftest {

// Every weight format's row dots (one row, two rows together), its widening, and a threaded prompt
// product. Where the CPU has no vector path, both sides run the portable kernels.
std::vector<KernelCheck> check_cpu_kernels();

}  // namespace runner::selftest
