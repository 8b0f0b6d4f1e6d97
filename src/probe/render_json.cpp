#include <cstdio>
#include <nlohmann/json.hpp>

#include "probe/render.h"
#include "probe/service_plan.h"

namespace probe {

namespace {

using nlohmann::json;

template <class T>
json or_null(const std::optional<T>& v) {
    return v ? json(*v) : json(nullptr);
}

std::string hex4(std::uint16_t v) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%04x", v);
    return buf;
}

const char* state_name(SourceState s) {
    switch (s) {
        case SourceState::used: return "used";
        case SourceState::absent: return "absent";
        case SourceState::skipped: return "skipped";
        case SourceState::error: return "error";
    }
    return "error";
}

json gpu_json(const GpuInfo& g) {
    json advice = {{"needed", g.advice.run_as.has_value()},
                   {"value", g.advice.run_as ? json(override_string(*g.advice.run_as)) : json(nullptr)},
                   {"runs", g.advice.runs},
                   {"rule", g.advice.rule}};
    return {
        {"index", g.index},
        {"kfd_node", or_null(g.kfd_node)},
        {"render_minor", or_null(g.render_minor)},
        {"gfx_target", g.gfx ? json(g.gfx_target()) : json(nullptr)},
        {"gfx_target_source", g.gfx_source == GfxSource::kfd ? "kfd" : "pci-id table"},
        {"marketing_name", g.marketing_name.empty() ? json(nullptr) : json(g.marketing_name)},
        {"name_source", g.name_source.empty() ? json(nullptr) : json(g.name_source)},
        {"pci",
         {{"vendor_id", hex4(g.vendor_id)},
          {"device_id", hex4(g.device_id)},
          {"revision", g.revision ? json(hex4(*g.revision)) : json(nullptr)},
          {"address", g.pci_address ? json(g.pci_address->str()) : json(nullptr)}}},
        {"vram_total_bytes", or_null(g.vram_total)},
        {"vram_free_bytes", or_null(g.vram_free())},
        {"gtt_total_bytes", or_null(g.gtt_total)},
        {"memory_source", g.memory_source.empty() ? json(nullptr) : json(g.memory_source)},
        {"integrated", g.integrated},
        {"integrated_basis", g.integrated_basis},
        {"unique_id", g.unique_id ? json(g.uuid()) : json(nullptr)},
        {"compute_units", or_null(g.compute_units)},
        {"wave_size", or_null(g.wave_size)},
        {"rocblas_kernels", or_null(g.rocblas_kernels)},
        {"hsa_override", advice},
    };
}

json rocblas_library_json(const ProbeReport::RocblasLibrary& r) {
    if (!r.tried) return nullptr;
    return {{"loads", r.loads},
            {"path", r.loads ? json(r.path) : json(nullptr)},
            {"version", r.loads ? json(r.version) : json(nullptr)},
            {"problem", r.loads ? json(nullptr) : json(r.detail)}};
}

}  // namespace

std::string render_json(const ProbeReport& report) {
    json gpus = json::array();
    for (const auto& g : report.gpus) gpus.push_back(gpu_json(g));
    json sources = json::array();
    for (const auto& s : report.sources)
        sources.push_back({{"name", s.name}, {"state", state_name(s.state)}, {"detail", s.detail}});
    json env_settings = json::array();
    for (const auto& s : report.overrides_in_env)
        env_settings.push_back({{"variable", s.variable},
                                {"value", s.value},
                                {"valid", s.problem.empty()},
                                {"gfx_target", s.parsed ? json(gfx_name(*s.parsed)) : json(nullptr)},
                                {"problem", s.problem.empty() ? json(nullptr) : json(s.problem)}});
    json service = json::array();
    for (const auto& line : service_env(report))
        if (!line.key.empty())
            service.push_back({{"variable", line.key}, {"value", line.value}, {"reason", line.comment}});

    const json doc = {
        {"schema_version", json_schema_version},
        {"gpus", gpus},
        {"gpu_targets", gpu_targets(report.gpus)},
        {"service_env", service},
        {"environment", env_settings},
        {"rocblas_dir", report.rocblas_dir.empty() ? json(nullptr) : json(report.rocblas_dir)},
        {"rocblas_library", rocblas_library_json(report.rocblas_library)},
        {"sources", sources},
        {"notes", report.notes},
        {"none_found_reason", report.none_found_reason.empty() ? json(nullptr) : json(report.none_found_reason)},
    };
    return doc.dump(2) + '\n';
}

}  // namespace probe
