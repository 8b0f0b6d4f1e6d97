// The host's peak f32 multiply-add rate: the bound for products that compute more than they read,
// such as a prompt's, measured with the threads the engine uses.
#pragma once

#include "runner/backend/cpu/thread_pool.h"

namespace bench {

// GFLOP/s (a multiply-add counted as two) of every thread of `pool` running independent vector
// multiply-adds from registers, with the widest vectors this CPU has (AVX-512 where present, though the
// engine's kernels use AVX2: a bound is what the machine can reach). Best of three passes.
double peak_f32_gflops(runner::cpu::ThreadPool& pool);

}  // namespace bench
