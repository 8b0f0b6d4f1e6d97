// The host's peak multiply-add rates, f32 and 8-bit integer: the bounds for products that compute more
// than they read, such as a prompt's (f32 for float rows, 8-bit for quantized ones), measured with the
// threads the engine uses.
#pragma once

#include "runner/backend/cpu/thread_pool.h"

namespace bench {

// GFLOP/s (a multiply-add counted as two) of every thread of `pool` running independent vector
// multiply-adds from registers, with the widest vectors this CPU has (AVX-512 where present, though the
// engine's kernels use AVX2: a bound is what the machine can reach). Best of three passes.
double peak_f32_gflops(runner::cpu::ThreadPool& pool);

// GOP/s (a multiply-add of 8-bit values counted as two) of every thread running the unsigned-by-signed
// byte products the integer kernels are built on (maddubs, widened to 32 bits by madd), from registers,
// AVX-512BW where present. Best of three passes.
double peak_int8_gops(runner::cpu::ThreadPool& pool);

}  // namespace bench
