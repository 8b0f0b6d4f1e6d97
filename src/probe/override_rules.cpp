#include "probe/override_rules.h"

#include <algorithm>
#include <array>

namespace probe {

namespace {

// shared/reference/gpu-detection.md §11. gfx1152/gfx1153 have no authoritative value and are left out.
constexpr std::array rules = {
    OverrideRule{{10, 3, 1}, {10, 3, 0}, "RDNA2 runs gfx1030 code (Ollama GPU docs; ROCm/ROCm#2353)"},
    OverrideRule{{10, 3, 2}, {10, 3, 0}, "RDNA2 runs gfx1030 code (Ollama GPU docs; ROCm/ROCm#2353)"},
    OverrideRule{{10, 3, 3}, {10, 3, 0}, "RDNA2 runs gfx1030 code (Ollama GPU docs; ROCm/ROCm#2353)"},
    OverrideRule{{10, 3, 4}, {10, 3, 0}, "RDNA2 runs gfx1030 code (Ollama GPU docs; ROCm/ROCm#2353)"},
    OverrideRule{{10, 3, 5}, {10, 3, 0}, "RDNA2 runs gfx1030 code (Ollama GPU docs; ROCm/ROCm#2353)"},
    OverrideRule{{10, 3, 6}, {10, 3, 0}, "RDNA2 runs gfx1030 code (Ollama GPU docs; ROCm/ROCm#2353)"},
    OverrideRule{{11, 0, 1}, {11, 0, 0}, "RDNA3 Navi32 runs gfx1100 code"},
    OverrideRule{{11, 0, 2}, {11, 0, 0}, "RDNA3 Navi33 runs gfx1100 code"},
    OverrideRule{{11, 0, 3}, {11, 0, 0}, "Phoenix/Hawk Point iGPUs run gfx1100 code (ollama#3189, ollama#15482)"},
    OverrideRule{{9, 0, 12}, {9, 0, 0}, "Renoir/Cezanne iGPUs run gfx900 code (Frigate and NixOS maps)"},
};

constexpr std::array default_targets = {
    GfxVersion{9, 0, 8},  GfxVersion{9, 0, 10}, GfxVersion{9, 4, 2},  GfxVersion{9, 5, 0},
    GfxVersion{10, 3, 0}, GfxVersion{11, 0, 0}, GfxVersion{11, 0, 1}, GfxVersion{11, 0, 2},
    GfxVersion{11, 5, 0}, GfxVersion{11, 5, 1}, GfxVersion{12, 0, 0}, GfxVersion{12, 0, 1},
};

}  // namespace

std::optional<OverrideRule> find_override_rule(GfxVersion physical) {
    for (const auto& rule : rules)
        if (rule.physical == physical) return rule;
    return std::nullopt;
}

bool in_default_targets(GfxVersion gfx) {
    return std::find(default_targets.begin(), default_targets.end(), gfx) != default_targets.end();
}

OverrideAdvice advise_override(GfxVersion physical, const std::optional<std::set<std::string>>& kernels) {
    const auto available = [&](GfxVersion gfx) {
        return kernels ? kernels->count(gfx_name(gfx)) != 0 : in_default_targets(gfx);
    };
    const std::string where = kernels ? "the installed rocBLAS" : "Ollama's ROCm target list (rocBLAS not found)";
    const std::string name = gfx_name(physical);

    OverrideAdvice advice;
    if (available(physical)) {
        advice.runs = true;
        advice.rule = name + " is in " + where + "; no override needed";
        return advice;
    }
    const auto rule = find_override_rule(physical);
    if (!rule) {
        advice.rule = name + " is not in " + where + " and no compatible target is known; ROCm will not use this GPU";
        return advice;
    }
    if (!available(rule->run_as)) {
        advice.rule =
            "neither " + name + " nor " + gfx_name(rule->run_as) + " is in " + where + "; ROCm will not use this GPU";
        return advice;
    }
    advice.runs = true;
    advice.run_as = rule->run_as;
    advice.rule = name + " is not in " + where + "; " + std::string(rule->basis) + ", so run it as " +
                  override_string(rule->run_as);
    return advice;
}

}  // namespace probe
