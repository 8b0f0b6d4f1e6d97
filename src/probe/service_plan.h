// What the build and the service need, derived from a probe report: the CMake GPU target list and
// the lines for /etc/default/ollama (overrides only where needed, iGPUs hidden beside a dGPU).
#pragma once

#include <string>
#include <vector>

#include "probe/gpu_info.h"

namespace probe {

struct EnvLine {
    std::string comment;  // printed as "# ..." above the assignment
    std::string key;      // empty for a comment-only line
    std::string value;
};

// Physical targets, unique, discrete GPUs first, in GPU order: "gfx1100;gfx1103".
std::string gpu_targets(const std::vector<GpuInfo>& gpus);

// The GPUs ROCm should use: all, unless discrete and integrated GPUs are mixed, then the discrete ones.
std::vector<const GpuInfo*> service_gpus(const std::vector<GpuInfo>& gpus);

std::vector<EnvLine> service_env(const ProbeReport& report);

}  // namespace probe
