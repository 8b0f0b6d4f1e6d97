#include "probe/service_plan.h"

#include <algorithm>

namespace probe {

namespace {

std::string describe(const GpuInfo& gpu) {
    std::string s = "GPU " + std::to_string(gpu.index) + " " + gpu.gfx_target();
    if (!gpu.marketing_name.empty()) s += " (" + gpu.marketing_name + ")";
    return s;
}

// ROCR_VISIBLE_DEVICES accepts indices or GPU-<uuid>; uuids survive a device being added or hidden.
std::string visible_list(const std::vector<const GpuInfo*>& gpus) {
    const bool all_uuids =
        std::all_of(gpus.begin(), gpus.end(), [](const GpuInfo* g) { return g->unique_id.has_value(); });
    std::string list;
    for (const auto* g : gpus) {
        if (!list.empty()) list += ',';
        list += all_uuids ? g->uuid() : std::to_string(g->index);
    }
    return list;
}

void add_override_lines(const std::vector<const GpuInfo*>& visible, std::vector<EnvLine>& lines) {
    std::vector<const GpuInfo*> needing;
    for (const auto* g : visible)
        if (g->advice.run_as) needing.push_back(g);
    for (const auto* g : visible) lines.push_back({describe(*g) + ": " + g->advice.rule, "", ""});
    if (needing.empty()) return;

    const auto first = *needing.front()->advice.run_as;
    const bool one_value_for_all =
        needing.size() == visible.size() &&
        std::all_of(needing.begin(), needing.end(), [&](const GpuInfo* g) { return *g->advice.run_as == first; });
    if (one_value_for_all) {
        lines.push_back({"every GPU ROCm sees needs the same target, so one global override",
                         "HSA_OVERRIDE_GFX_VERSION", override_string(first)});
        return;
    }
    // A global override would re-target the GPUs that run natively; per-node variables (libhsakmt,
    // ROCm 6.2 and later) count CPU nodes in the index, as KFD numbers them.
    for (const auto* g : needing) {
        if (!g->kfd_node) {
            lines.push_back({describe(*g) + " needs " + override_string(*g->advice.run_as) +
                                 " but its KFD node is unknown; set HSA_OVERRIDE_GFX_VERSION_<node> by hand",
                             "", ""});
            continue;
        }
        lines.push_back({"per-GPU override for KFD node " + std::to_string(*g->kfd_node) + " (" + describe(*g) + ")",
                         "HSA_OVERRIDE_GFX_VERSION_" + std::to_string(*g->kfd_node),
                         override_string(*g->advice.run_as)});
    }
}

}  // namespace

std::string gpu_targets(const std::vector<GpuInfo>& gpus) {
    std::vector<std::string> targets;
    for (const bool integrated : {false, true}) {
        for (const auto& g : gpus) {
            if (g.integrated != integrated || !g.gfx) continue;
            const auto name = g.gfx_target();
            if (std::find(targets.begin(), targets.end(), name) == targets.end()) targets.push_back(name);
        }
    }
    std::string joined;
    for (const auto& t : targets) joined += (joined.empty() ? "" : ";") + t;
    return joined;
}

std::vector<const GpuInfo*> service_gpus(const std::vector<GpuInfo>& gpus) {
    const bool any_discrete = std::any_of(gpus.begin(), gpus.end(), [](const GpuInfo& g) { return !g.integrated; });
    std::vector<const GpuInfo*> chosen;
    for (const auto& g : gpus)
        if (!any_discrete || !g.integrated) chosen.push_back(&g);
    return chosen;
}

std::vector<EnvLine> service_env(const ProbeReport& report) {
    std::vector<EnvLine> lines;
    for (const auto& s : report.overrides_in_env) {
        if (!s.problem.empty())
            lines.push_back(
                {"WARNING: " + s.problem + "; libhsakmt rejects it and ROCm sees no GPU at all: fix or remove it", "",
                 ""});
        else
            lines.push_back({"note: " + s.variable + "=" + s.value + " is already set in this environment (ROCm runs " +
                                 (s.variable == "HSA_OVERRIDE_GFX_VERSION" ? "every GPU" : "that node") + " as " +
                                 gfx_name(*s.parsed) + ")",
                             "", ""});
    }
    const auto visible = service_gpus(report.gpus);
    if (visible.size() < report.gpus.size()) {
        std::string hidden;
        for (const auto& g : report.gpus)
            if (g.integrated) hidden += (hidden.empty() ? "" : ", ") + describe(g);
        lines.push_back(
            {"hide the integrated " + hidden + " so that Ollama and ollama-airllm use only the discrete GPU(s)",
             "ROCR_VISIBLE_DEVICES", visible_list(visible)});
    }
    add_override_lines(visible, lines);
    return lines;
}

}  // namespace probe
