// What the host gives the engine, measured: RAM read bandwidth (streamed layers and host rows are bound
// by it) and the CPU's rate on a prompt's products.
#pragma once

namespace runner::selftest {

// GB/s reading a buffer far larger than the caches with `threads` threads (0: every one): host_read's
// best_read, the benchmarks' bound. One thread is the bound of work the sampler does on the decode thread.
double host_read_gbps(unsigned threads = 0);

// GFLOP/s of cpu::matmul on bf16 weights for a 64-token prompt.
double cpu_matrix_gflops();

}  // namespace runner::selftest
