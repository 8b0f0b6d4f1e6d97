// `ollama-airllm selftest` on one device: what it is, its kernel checks and its rates. The GPU's kernels
// against the CPU's; the CPU's vector kernels against its portable ones.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "runner/engine/engine_factory.h"
#include "runner/selftest/kernel_check.h"

namespace runner {

struct DeviceSelftest {
    std::vector<std::pair<std::string, std::string>> facts;  // ("device", "NVIDIA H200 (GPU 0)"), ("blas", ...)
    std::vector<selftest::KernelCheck> checks;
    std::vector<std::pair<std::string, std::string>> rates;  // ("host RAM read", "33.1 GB/s"), ...
};

// An error: the device does not exist or cannot be used (no GPU, a build without a GPU backend).
common::Result<DeviceSelftest> selftest_device(const Device& device);

}  // namespace runner
