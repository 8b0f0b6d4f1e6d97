// When a GPU needs HSA_OVERRIDE_GFX_VERSION: only when ROCm lacks kernels for its physical target and a
// compatible target has them. A global override re-targets every GPU, so it is never a default.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "probe/gpu_info.h"

namespace probe {

struct OverrideRule {
    GfxVersion physical;
    GfxVersion run_as;
    std::string_view basis;
};

// The rule for a physical target, if any target is known to run its code.
std::optional<OverrideRule> find_override_rule(GfxVersion physical);

// Targets Ollama v0.32.15 builds for ROCm 7.2 (preset rocm_v7_2_linux): what is assumed available
// when the installed rocBLAS cannot be inspected.
bool in_default_targets(GfxVersion gfx);

// `kernels`: the gfx targets the installed rocBLAS has kernels for, or nullopt if unknown.
OverrideAdvice advise_override(GfxVersion physical, const std::optional<std::set<std::string>>& kernels);

}  // namespace probe
