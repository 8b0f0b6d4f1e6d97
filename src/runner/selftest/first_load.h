// The kernel checks at a device's first load: a GPU whose kernels give wrong answers is refused with
// one line naming the kernel, instead of producing text that looks like a bad model. A pass is
// remembered per device, driver and binary, so later loads start at once; a failure is never
// remembered, so the next load checks again.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "runner/selftest/kernel_check.h"

namespace runner::selftest {

struct CheckedDevice {
    std::string uuid;  // the GPU's
    std::string pci;   // its slot: GPUs without a unique id share ROCm's uuid "GPU-XX"
    // What a pass holds for: the GPU's name and target, the driver and runtime versions, the BLAS library
    // and its version (a change to any of them can change what the kernels give).
    std::string identity;
    std::string name;  // for messages
};

struct FirstLoad {
    bool remembered = false;  // a pass from an earlier load; nothing ran
    // The BLAS's products (checks named "blas.*") failed while our own kernels passed: the caller turns
    // the BLAS off, and the GPU is still used.
    std::string blas_failure;
};

// Where passes are remembered: <cache root>/kernel-checks, one file per GPU (uuid and slot).
std::filesystem::path kernel_checks_dir(const std::filesystem::path& cache_root);

// Runs `checks` unless a pass for this device, runtime and binary is remembered in `dir`. An error names
// the first failed kernel and the way out. With AIRLLM_SELFTEST_BREAK set, nothing is read or remembered.
common::Result<FirstLoad> check_at_first_load(const std::filesystem::path& dir, const CheckedDevice& device,
                                              const std::function<std::vector<KernelCheck>()>& checks);

// What a failed check says: the kernel, its error against the tolerance, or what it threw.
std::string describe_failure(const KernelCheck& check);

}  // namespace runner::selftest
