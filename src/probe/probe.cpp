#include "probe/probe.h"

#include <algorithm>
#include <cstring>

#include "common/rocblas_library.h"
#include "probe/override_rules.h"
#include "probe/pci_ids.h"
#include "probe/rocblas_kernels.h"
#include "probe/source_drm.h"
#include "probe/source_kfd.h"
#include "probe/source_smi.h"
#include "probe/sysfs.h"

namespace probe {

namespace {

constexpr std::uint64_t gib = 1ull << 30;
constexpr const char* override_variable = "HSA_OVERRIDE_GFX_VERSION";

std::string env_or_empty(const ProbeOptions& options, const std::string& key) {
    const auto it = options.environment.find(key);
    return it == options.environment.end() ? std::string() : it->second;
}

// One GPU while being assembled: what each source said about it.
struct Candidate {
    std::optional<KfdGpu> kfd;
    std::optional<DrmDevice> drm;
    std::optional<SmiDevice> smi;
};

std::optional<PciAddress> address_of(const Candidate& c) {
    if (c.drm && c.drm->address) return c.drm->address;
    if (c.kfd) return c.kfd->address;
    return std::nullopt;
}

void join_smi(std::vector<Candidate>& candidates, const std::vector<SmiDevice>& devices,
              std::vector<std::string>& notes) {
    for (const auto& dev : devices) {
        Candidate* match = nullptr;
        for (auto& c : candidates) {
            const auto minor = c.kfd   ? c.kfd->render_minor
                               : c.drm ? std::optional<int>(c.drm->render_minor)
                                       : std::nullopt;
            if (dev.render_minor && minor == dev.render_minor) {
                match = &c;
                break;
            }
        }
        if (!match && dev.address) {
            // Without a render minor, the PCI slot decides, but only when it names exactly one GPU:
            // MI300 partitions share a slot.
            int hits = 0;
            for (auto& c : candidates) {
                const auto addr = address_of(c);
                if (addr && addr->same_slot(*dev.address)) {
                    match = &c;
                    ++hits;
                }
            }
            if (hits != 1) match = nullptr;
        }
        if (match)
            match->smi = dev;
        else
            notes.push_back("rocm-smi device " + (dev.address ? dev.address->str() : std::string("?")) +
                            " matches no KFD/DRM GPU by render minor or PCI slot; ignored");
    }
}

std::optional<AmdgpuIds> load_amdgpu_ids(const SysfsTree& tree, const std::string& explicit_file, SourceReport& report,
                                         std::vector<std::string>& notes) {
    report.name = "amdgpu.ids";
    std::vector<std::pair<SysfsTree, std::filesystem::path>> candidates;
    if (!explicit_file.empty())
        candidates.emplace_back(SysfsTree("/"), std::filesystem::absolute(explicit_file));
    else {
        candidates.emplace_back(tree, "/usr/share/libdrm/amdgpu.ids");
        candidates.emplace_back(tree, "/opt/amdgpu/share/libdrm/amdgpu.ids");
    }
    for (const auto& [where, file] : candidates) {
        const auto read = where.read(file, 4 * 1024 * 1024);
        if (read.status == ReadStatus::absent) continue;
        if (read.status != ReadStatus::ok) {
            notes.push_back(where.display(file) + ": " + read.reason + "; marketing names from other sources");
            report.state = SourceState::error;
            report.detail = where.display(file) + ": " + read.reason;
            return std::nullopt;
        }
        auto ids = AmdgpuIds::parse(read.text, where.display(file));
        if (!ids) {
            notes.push_back(ids.error().message + "; marketing names from other sources");
            report.state = SourceState::error;
            report.detail = ids.error().message;
            return std::nullopt;
        }
        report.state = SourceState::used;
        report.detail = where.display(file) + ": " + std::to_string(ids->size()) + " names";
        return std::move(ids).value();
    }
    report.state = SourceState::absent;
    report.detail = "no amdgpu.ids (package libdrm)";
    return std::nullopt;
}

void decide_integrated(GpuInfo& gpu, const Candidate& c) {
    const bool apu_target = gpu.gfx && is_apu_target(*gpu.gfx);
    if (c.drm && c.drm->has_board_files) {
        gpu.integrated = false;
        gpu.integrated_basis = "board_info or mem_info_vram_vendor present (discrete boards only)";
        return;
    }
    if (gpu.vram_total && gpu.gtt_total) {
        const auto vram = *gpu.vram_total;
        const auto gtt = *gpu.gtt_total;
        if (vram <= 4 * gib && gtt >= 8 * gib && gtt >= 4 * vram) {
            gpu.integrated = true;
            gpu.integrated_basis = "VRAM is a carve-out of at most 4 GiB beside a GTT pool 4x larger (Ollama's rule)";
            return;
        }
    }
    if (apu_target) {
        gpu.integrated = true;
        gpu.integrated_basis = gpu.gfx_target() + " exists only in APUs";
        return;
    }
    gpu.integrated = false;
    gpu.integrated_basis = gpu.gfx ? gpu.gfx_target() + " is a discrete-GPU target" : "no evidence of an APU";
}

void choose_memory(GpuInfo& gpu, const Candidate& c, std::vector<std::string>& notes) {
    if (c.smi && c.smi->vram_total) {
        gpu.vram_total = c.smi->vram_total;
        gpu.vram_used = c.smi->vram_used;
        gpu.memory_source = "rocm-smi";
    } else if (c.drm && c.drm->vram_total) {
        gpu.vram_total = c.drm->vram_total;
        gpu.vram_used = c.drm->vram_used;
        gpu.memory_source = "drm";
    } else if (c.kfd && c.kfd->vram_total) {
        gpu.vram_total = c.kfd->vram_total;
        gpu.vram_used = c.kfd->vram_used;
        gpu.memory_source = "kfd";
    }
    // Partitioned MI300s: rocm-smi and DRM report the whole GPU for every partition (ROCm/ROCm#4750),
    // the KFD banks the partition's own share, which is what a process on it can use.
    if (c.kfd && c.kfd->vram_total && gpu.vram_total && *c.kfd->vram_total < *gpu.vram_total) {
        notes.push_back("GPU at KFD node " + std::to_string(c.kfd->node) + ": " + gpu.memory_source + " reports " +
                        std::to_string(*gpu.vram_total) + " bytes of VRAM, its KFD memory banks " +
                        std::to_string(*c.kfd->vram_total) + "; a partition, so the KFD figure is used");
        gpu.vram_total = c.kfd->vram_total;
        gpu.vram_used = c.kfd->vram_used;
        gpu.memory_source = "kfd (partition)";
    }
    if (c.smi && c.smi->gtt_total)
        gpu.gtt_total = c.smi->gtt_total;
    else if (c.drm)
        gpu.gtt_total = c.drm->gtt_total;
}

void choose_name(GpuInfo& gpu, const Candidate& c, const std::optional<AmdgpuIds>& ids) {
    if (ids && gpu.revision) {
        if (auto name = ids->name(gpu.device_id, *gpu.revision)) {
            gpu.marketing_name = *name;
            gpu.name_source = "amdgpu.ids";
            return;
        }
    }
    if (c.smi && !c.smi->name.empty()) {
        gpu.marketing_name = c.smi->name;
        gpu.name_source = "rocm-smi";
        return;
    }
    if (ids) {
        if (auto name = ids->unique_name(gpu.device_id)) {
            gpu.marketing_name = *name;
            gpu.name_source = "amdgpu.ids";
            return;
        }
    }
    if (const auto chip = lookup_pci_chip(gpu.device_id)) {
        gpu.marketing_name = std::string(chip->chip);
        gpu.name_source = "pci-id table";
    }
}

GpuInfo assemble(const Candidate& c, int index, const std::optional<AmdgpuIds>& ids, std::vector<std::string>& notes) {
    GpuInfo gpu;
    gpu.index = index;
    if (c.kfd) {
        gpu.kfd_node = c.kfd->node;
        gpu.render_minor = c.kfd->render_minor;
        gpu.vendor_id = c.kfd->vendor_id;
        gpu.device_id = c.kfd->device_id;
        gpu.pci_address = c.kfd->address;
        gpu.unique_id = c.kfd->unique_id;
        gpu.compute_units = c.kfd->compute_units;
        gpu.wave_size = c.kfd->wave_size;
    }
    if (c.drm) {
        if (!gpu.render_minor) gpu.render_minor = c.drm->render_minor;
        if (c.kfd && c.drm->device_id != 0 && c.drm->device_id != c.kfd->device_id)
            notes.push_back("renderD" + std::to_string(c.drm->render_minor) +
                            ": DRM device id does not match KFD node " + std::to_string(c.kfd->node) +
                            "; KFD's is used");
        if (gpu.device_id == 0) {
            gpu.vendor_id = c.drm->vendor_id;
            gpu.device_id = c.drm->device_id;
        }
        gpu.revision = c.drm->revision;
        if (c.drm->address) gpu.pci_address = c.drm->address;
        if (!gpu.unique_id) gpu.unique_id = c.drm->unique_id;
    }
    if (c.smi) {
        if (!gpu.pci_address) gpu.pci_address = c.smi->address;
        if (!gpu.unique_id) gpu.unique_id = c.smi->unique_id;
    }

    if (c.kfd && c.kfd->gfx_target_version != 0) {
        if (auto v = decode_kfd_gfx_version(c.kfd->gfx_target_version))
            gpu.gfx = *v;
        else
            notes.push_back("KFD node " + std::to_string(c.kfd->node) + ": " + v.error().message);
    }
    if (!gpu.gfx) {
        if (const auto chip = lookup_pci_chip(gpu.device_id)) {
            gpu.gfx = chip->gfx;
            gpu.gfx_source = GfxSource::pci_id_table;
        } else {
            char id[8];
            std::snprintf(id, sizeof id, "%04x", gpu.device_id);
            notes.push_back("GPU " + std::to_string(index) + ": no gfx_target_version and PCI device 0x" + id +
                            " is not in the id table; its target is unknown");
        }
    }
    choose_memory(gpu, c, notes);
    choose_name(gpu, c, ids);
    decide_integrated(gpu, c);
    return gpu;
}

std::vector<OverrideSetting> read_override_settings(const ProbeOptions& options) {
    std::vector<OverrideSetting> settings;
    for (const auto& [key, value] : options.environment) {
        if (key.rfind(override_variable, 0) != 0) continue;
        const std::string suffix = key.substr(std::strlen(override_variable));
        const bool per_node =
            suffix.size() > 1 && suffix[0] == '_' &&
            std::all_of(suffix.begin() + 1, suffix.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
        if (!suffix.empty() && !per_node) continue;
        OverrideSetting s;
        s.variable = key;
        s.value = value;
        if (auto parsed = parse_override(value))
            s.parsed = *parsed;
        else
            s.problem = parsed.error().message;
        settings.push_back(s);
    }
    return settings;
}

std::string none_found_reason(const KfdScan& kfd, bool drm_any_amd, const SourceReport& smi) {
    std::string why = "no AMD GPU: ";
    if (!kfd.present)
        why += kfd.topology_dir + " does not exist (amdgpu driver not loaded?)";
    else
        why += kfd.topology_dir + " has " + std::to_string(kfd.cpu_nodes) + " CPU node(s) and no usable GPU node";
    why += drm_any_amd ? "" : "; no renderD* device with PCI vendor 0x1002";
    why += "; rocm-smi: " + smi.detail;
    return why;
}

}  // namespace

std::map<std::string, std::string> relevant_environment(char** envp) {
    std::map<std::string, std::string> env;
    for (char** e = envp; e && *e; ++e) {
        const std::string entry = *e;
        const auto eq = entry.find('=');
        if (eq == std::string::npos) continue;
        const std::string key = entry.substr(0, eq);
        if (key == "ROCM_PATH" || key.rfind(override_variable, 0) == 0) env[key] = entry.substr(eq + 1);
    }
    return env;
}

ProbeReport run_probe(const ProbeOptions& options) {
    ProbeReport report;
    const SysfsTree tree(options.root);
    const std::string rocm_path = env_or_empty(options, "ROCM_PATH");

    SmiScan smi;
    smi.report.name = "rocm-smi";
    if (options.use_smi)
        smi = scan_smi(options.smi_library, rocm_path);
    else {
        smi.report.state = SourceState::skipped;
        smi.report.detail = options.smi_off_reason;
    }

    KfdScan kfd = scan_kfd(tree);
    report.notes.insert(report.notes.end(), kfd.notes.begin(), kfd.notes.end());
    report.input_error = kfd.input_error;

    std::vector<Candidate> candidates;
    for (const auto& gpu : kfd.gpus) {
        Candidate c;
        c.kfd = gpu;
        if (gpu.render_minor) c.drm = read_drm_device(tree, *gpu.render_minor, report.notes);
        candidates.push_back(std::move(c));
    }
    bool drm_any_amd =
        std::any_of(candidates.begin(), candidates.end(), [](const Candidate& c) { return c.drm.has_value(); });
    if (!kfd.present) {
        for (auto& dev : scan_drm(tree, report.notes)) {
            Candidate c;
            c.drm = std::move(dev);
            candidates.push_back(std::move(c));
        }
        drm_any_amd = !candidates.empty();
    }
    join_smi(candidates, smi.devices, report.notes);

    SourceReport ids_report;
    const auto ids = load_amdgpu_ids(tree, options.amdgpu_ids, ids_report, report.notes);
    const auto kernels = find_rocblas_kernels(tree, options.rocblas_dir, rocm_path);
    std::optional<std::set<std::string>> kernel_targets;
    if (kernels) {
        kernel_targets = kernels->targets;
        report.rocblas_dir = kernels->dir;
    }

    bool used_pci_table = false;
    for (const auto& c : candidates) {
        GpuInfo gpu = assemble(c, static_cast<int>(report.gpus.size()), ids, report.notes);
        used_pci_table = used_pci_table || gpu.gfx_source == GfxSource::pci_id_table;
        if (gpu.gfx) {
            if (kernel_targets) gpu.rocblas_kernels = kernel_targets->count(gpu.gfx_target()) != 0;
            gpu.advice = advise_override(*gpu.gfx, kernel_targets);
        } else {
            gpu.advice.rule = "unknown target; cannot tell what ROCm needs";
        }
        report.gpus.push_back(std::move(gpu));
    }

    report.sources.push_back(smi.report);
    report.sources.push_back({"kfd", kfd.present ? SourceState::used : SourceState::absent,
                              kfd.topology_dir + (kfd.present ? ": " + std::to_string(kfd.gpus.size()) + " GPU node(s)"
                                                              : " does not exist")});
    report.sources.push_back({"drm", drm_any_amd ? SourceState::used : SourceState::absent,
                              drm_any_amd ? "/sys/class/drm/renderD*/device" : "no AMD render node"});
    report.sources.push_back({"pci-id table", used_pci_table ? SourceState::used : SourceState::skipped,
                              used_pci_table ? "gfx target from the PCI device id (no gfx_target_version)"
                                             : "not needed: KFD gave every target"});
    report.sources.push_back(ids_report);
    report.sources.push_back({"rocblas", kernels ? SourceState::used : SourceState::absent,
                              kernels ? kernels->dir + ": " + std::to_string(kernels->targets.size()) + " target(s)"
                                      : "no rocBLAS TensileLibrary files found"});

    if (options.load_rocblas) {
        auto& r = report.rocblas_library;
        r.tried = true;
        const auto lib =
            common::RocblasLibrary::open(common::RocblasLibrary::candidates(options.rocblas_library, rocm_path));
        if (lib) {
            r.loads = true;
            r.path = lib->path();
            r.version = lib->version();
        } else {
            r.detail = lib.error().message;
        }
        report.sources.push_back({"rocblas library", r.loads ? SourceState::used : SourceState::absent,
                                  r.loads ? r.path + ": rocBLAS " + r.version : r.detail});
    } else {
        report.sources.push_back(
            {"rocblas library", SourceState::skipped, "not loaded when replaying a captured tree"});
    }

    report.overrides_in_env = read_override_settings(options);
    if (report.gpus.empty()) report.none_found_reason = none_found_reason(kfd, drm_any_amd, smi.report);
    return report;
}

}  // namespace probe
