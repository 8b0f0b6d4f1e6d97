#include <algorithm>
#include <cstdio>
#include <vector>

#include "probe/render.h"
#include "probe/service_plan.h"

namespace probe {

namespace {

std::string optional_bytes(const std::optional<std::uint64_t>& v) { return v ? format_bytes(*v) : "-"; }

std::string pci_id(const GpuInfo& g) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04x:%04x", g.vendor_id, g.device_id);
    return buf;
}

std::string rocblas_cell(const GpuInfo& g) {
    if (!g.rocblas_kernels) return "?";
    return *g.rocblas_kernels ? "yes" : "no";
}

std::string state_name(SourceState s) {
    switch (s) {
        case SourceState::used: return "used";
        case SourceState::absent: return "absent";
        case SourceState::skipped: return "skipped";
        case SourceState::error: return "error";
    }
    return "?";
}

// Left-aligned text columns, right-aligned numbers: a plain table, as `lspci` or `pacman -Q` users expect.
std::string layout(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right) {
    std::vector<std::size_t> width(rows.front().size(), 0);
    for (const auto& row : rows)
        for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    std::string out;
    for (const auto& row : rows) {
        std::string line = " ";
        for (std::size_t i = 0; i < row.size(); ++i) {
            const std::string pad(width[i] - row[i].size(), ' ');
            line += ' ';
            line += right[i] ? pad + row[i] : row[i] + pad;
            line += ' ';
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + '\n';
    }
    return out;
}

}  // namespace

std::string format_bytes(std::uint64_t bytes) {
    char buf[32];
    if (bytes >= (1ull << 30))
        std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
    else
        std::snprintf(buf, sizeof buf, "%llu MiB", static_cast<unsigned long long>(bytes >> 20));
    return buf;
}

std::string render_table(const ProbeReport& report, bool verbose) {
    std::string out;
    if (report.gpus.empty()) {
        out += report.none_found_reason + '\n';
    } else {
        out += std::to_string(report.gpus.size()) + " AMD GPU" + (report.gpus.size() == 1 ? "" : "s") + "\n";
        std::vector<std::vector<std::string>> rows = {
            {"#", "node", "target", "name", "kind", "VRAM", "free", "GTT", "PCI id", "address", "rocBLAS"}};
        for (const auto& g : report.gpus) {
            rows.push_back({std::to_string(g.index), g.kfd_node ? std::to_string(*g.kfd_node) : "-",
                            g.gfx_target() + (g.gfx_source == GfxSource::pci_id_table ? "*" : ""),
                            g.marketing_name.empty() ? "-" : g.marketing_name, g.integrated ? "integrated" : "discrete",
                            optional_bytes(g.vram_total), optional_bytes(g.vram_free()), optional_bytes(g.gtt_total),
                            pci_id(g), g.pci_address ? g.pci_address->str() : "-", rocblas_cell(g)});
        }
        out += layout(rows, {true, true, false, false, false, true, true, true, false, false, false});
        if (std::any_of(report.gpus.begin(), report.gpus.end(),
                        [](const GpuInfo& g) { return g.gfx_source == GfxSource::pci_id_table; }))
            out += "  * target from the PCI device id: this kernel's KFD has no gfx_target_version\n";
    }

    if (verbose) {
        out += "\nsources:\n";
        for (const auto& s : report.sources)
            out += "  " + s.name + ": " + state_name(s.state) + " (" + s.detail + ")\n";
        for (const auto& g : report.gpus) {
            out += "GPU " + std::to_string(g.index) + ":";
            if (g.unique_id) out += " uuid " + g.uuid() + ";";
            if (g.render_minor) out += " renderD" + std::to_string(*g.render_minor) + ";";
            if (g.compute_units) out += " " + std::to_string(*g.compute_units) + " CUs;";
            if (g.wave_size) out += " wave" + std::to_string(*g.wave_size) + ";";
            out += " memory from " + (g.memory_source.empty() ? std::string("nowhere") : g.memory_source) + ";";
            out += " name from " + (g.name_source.empty() ? std::string("nowhere") : g.name_source) + ";";
            out += " " + std::string(g.integrated ? "integrated" : "discrete") + ": " + g.integrated_basis + "\n";
        }
    }

    if (report.rocblas_library.tried && !report.gpus.empty())
        out += report.rocblas_library.loads
                   ? "\nrocBLAS " + report.rocblas_library.version + " loads (" + report.rocblas_library.path +
                         "): ollama-airllm runs prompts on it where it has the GPU's kernels\n"
                   : "\nrocBLAS does not load, so ollama-airllm runs prompts on its own kernels: " +
                         report.rocblas_library.detail + "\n";

    if (!report.gpus.empty()) {
        out += "\nbuild   (rocm-probe --format targets): CMAKE_HIP_ARCHITECTURES=" + render_targets(report);
        out += "service (rocm-probe --format env, for /etc/default/ollama):\n";
        const auto lines = service_env(report);
        bool any_assignment = false;
        for (const auto& line : lines) {
            if (!line.comment.empty()) out += "  # " + line.comment + '\n';
            if (!line.key.empty()) {
                out += "  " + line.key + "=" + line.value + '\n';
                any_assignment = true;
            }
        }
        if (!any_assignment) out += "  (nothing to set)\n";
    } else {
        for (const auto& s : report.overrides_in_env)
            if (!s.problem.empty()) out += "warning: " + s.problem + "; ROCm sees no GPU while it is set\n";
    }
    if (!report.notes.empty()) {
        out += "\nnotes:\n";
        for (const auto& n : report.notes) out += "  " + n + '\n';
    }
    return out;
}

}  // namespace probe
