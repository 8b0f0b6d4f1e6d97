// Whether a ROCm device's prompt products run on rocBLAS, decided once per process and gfx target.
// Plain C++ (CI tests it against a stand-in library): the rocBLAS that loads, and only for a target it
// has kernels for, because rocBLAS aborts the process on its first product for any other.
#pragma once

#include <memory>
#include <string>

#include "common/rocblas_library.h"

namespace runner::gpu {

struct RocblasChoice {
    std::shared_ptr<const common::RocblasLibrary> library;  // null: our own kernels run the prompts
    std::string status;  // for the load log and selftest: what is used, or why not and what to do
};

// `setting`: AIRLLM_ROCBLAS ("" for the installed library, "off", or a library's path). `gfx`: the
// device's target as the runtime names it ("gfx1100", or "gfx90a:sramecc+:xnack-").
RocblasChoice choose_rocblas(const std::string& setting, const std::string& rocm_path, const std::string& gfx);

// choose_rocblas with AIRLLM_ROCBLAS and ROCM_PATH, once per process and target.
const RocblasChoice& rocblas_for(const std::string& gfx);

}  // namespace runner::gpu
