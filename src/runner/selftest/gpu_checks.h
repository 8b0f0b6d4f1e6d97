// Every GPU kernel the engine uses, on small known inputs, against the CPU kernel it replaces (the checks
// the GPU tests make, shipped in the binary): `selftest` runs them, and so does a device's first load.
// Plain C++ over backend/gpu's interface; built with a GPU backend only.
#pragma once

#include <string>
#include <vector>

#include "runner/selftest/kernel_check.h"

namespace runner::selftest {

// On the current device. Named "matmul.<format>.decode|prompt", "blas.<format>[.add|.bias]",
// "norm_matmul...", "rope_store_kv.half|adjacent", "attention.prompt|decode.f32_cache|f16_cache",
// "attention.decode.rope_first...", ... The BLAS is checked wherever it loads, even if an earlier check turned it off,
// and is left on or off as its checks say (gpu::set_blas_checked).
std::vector<KernelCheck> check_gpu_kernels();

struct GpuRates {
    double upload_gbps = 0;    // pinned host memory to the device: what a streamed layer crosses
    double matrix_tflops = 0;  // a bf16 prompt product (4096 x 4096, 512 tokens)
    std::string matrix_on;     // the library or kernels that ran it
};
GpuRates measure_gpu_rates();

}  // namespace runner::selftest
