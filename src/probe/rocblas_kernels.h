// Which gfx targets the installed rocBLAS has kernels for, from the names of its TensileLibrary files
// (what Ollama checks before using a GPU). ggml's HIP backend needs rocBLAS kernels for the target the
// runtime sees, so this decides whether an HSA_OVERRIDE_GFX_VERSION is needed.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "probe/sysfs.h"

namespace probe {

struct RocblasKernels {
    std::string dir;                // displayed path of the library folder that was read
    std::set<std::string> targets;  // "gfx1100", "gfx90a", ...
};

// Looks in `explicit_dir` if given (a path on this machine), else $ROCM_PATH/lib/rocblas/library,
// /opt/rocm/lib/rocblas/library (Arch), /usr/lib/rocblas/library and
// /usr/lib/x86_64-linux-gnu/rocblas/<version>/library (Debian), all under the tree's root. Nothing found: nullopt
// (unknown, not "no kernels").
std::optional<RocblasKernels> find_rocblas_kernels(const SysfsTree& tree, const std::string& explicit_dir,
                                                   const std::string& rocm_path);

}  // namespace probe
