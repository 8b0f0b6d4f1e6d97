// Runs every source in order (rocm-smi, KFD, DRM, PCI-id table, amdgpu.ids, rocBLAS) and joins what
// they say about each GPU by render minor or PCI address, never by index.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "probe/gpu_info.h"

namespace probe {

struct ProbeOptions {
    std::filesystem::path root = "/";  // a captured tree replays a machine
    bool use_smi = true;               // rocm-smi reads the live /sys, so replays turn it off
    std::string smi_off_reason = "not used when replaying a captured tree";
    std::string smi_library;                         // explicit librocm_smi64 path
    std::string rocblas_dir;                         // explicit rocBLAS library folder on this machine
    bool load_rocblas = true;                        // whether to try loading rocBLAS (not for replays)
    std::string rocblas_library;                     // explicit librocblas path
    std::string amdgpu_ids;                          // explicit amdgpu.ids on this machine
    std::map<std::string, std::string> environment;  // ROCM_PATH and HSA_OVERRIDE_GFX_VERSION[_N]
};

ProbeReport run_probe(const ProbeOptions& options);

// The variables of `envp` that the probe reads, for ProbeOptions::environment.
std::map<std::string, std::string> relevant_environment(char** envp);

}  // namespace probe
