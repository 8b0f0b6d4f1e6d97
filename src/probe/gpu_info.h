// What rocm-probe knows about one AMD GPU after joining its sources, and the report around the list.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "probe/gfx_target.h"

namespace probe {

// Where a fact came from, so users and bug reports can tell a measured value from a guess.
enum class GfxSource { kfd, pci_id_table };

struct PciAddress {
    std::uint32_t domain = 0;
    std::uint32_t bus = 0;
    std::uint32_t device = 0;
    std::uint32_t function = 0;

    std::string str() const;  // "0000:03:00.0"
    // Partitions of one MI300 share (domain, bus, device) but differ in function bits: compare without them.
    bool same_slot(const PciAddress& other) const {
        return domain == other.domain && bus == other.bus && device == other.device;
    }
    friend bool operator==(const PciAddress&, const PciAddress&) = default;
};

// Whether ROCm needs HSA_OVERRIDE_GFX_VERSION to run this GPU, and the rule that said so.
struct OverrideAdvice {
    std::optional<GfxVersion> run_as;  // set: the GPU only runs as this target
    bool runs = false;                 // ROCm has kernels for the GPU, natively or through run_as
    std::string rule;
};

struct GpuInfo {
    int index = 0;                    // HIP/ROCr order: KFD GPU nodes in numeric node order
    std::optional<int> kfd_node;      // libhsakmt node index, CPU nodes included (HSA_OVERRIDE_GFX_VERSION_<node>)
    std::optional<int> render_minor;  // /dev/dri/renderD<minor>

    std::optional<GfxVersion> gfx;  // physical ISA; never taken from an override
    GfxSource gfx_source = GfxSource::kfd;

    std::string marketing_name;  // may be empty when no source names the chip
    std::string name_source;     // "amdgpu.ids", "rocm-smi", "pci-id table"

    std::uint16_t vendor_id = 0;
    std::uint16_t device_id = 0;
    std::optional<std::uint8_t> revision;
    std::optional<PciAddress> pci_address;

    std::optional<std::uint64_t> vram_total;  // bytes
    std::optional<std::uint64_t> vram_used;   // bytes
    std::optional<std::uint64_t> gtt_total;   // bytes
    std::string memory_source;

    bool integrated = false;
    std::string integrated_basis;  // the rule that decided integrated vs discrete

    std::optional<std::uint64_t> unique_id;
    std::optional<unsigned> compute_units;
    std::optional<unsigned> wave_size;  // 32 or 64: the runner's kernels are built for either

    // Whether the installed rocBLAS ships kernels for this target; empty when no library was found.
    std::optional<bool> rocblas_kernels;
    OverrideAdvice advice;

    std::optional<std::uint64_t> vram_free() const {
        if (!vram_total || !vram_used) return std::nullopt;
        return *vram_used >= *vram_total ? 0 : *vram_total - *vram_used;
    }
    std::string gfx_target() const { return gfx ? gfx_name(*gfx) : std::string("unknown"); }
    std::string uuid() const;  // "GPU-<16 hex>" as ROCR_VISIBLE_DEVICES accepts, empty without unique_id
};

enum class SourceState { used, absent, skipped, error };

struct SourceReport {
    std::string name;  // "rocm-smi", "kfd", "drm", "pci-id table", "amdgpu.ids", "rocblas"
    SourceState state = SourceState::absent;
    std::string detail;
};

// A value of HSA_OVERRIDE_GFX_VERSION[_N] found in the environment, checked as libhsakmt would.
struct OverrideSetting {
    std::string variable;  // "HSA_OVERRIDE_GFX_VERSION" or "HSA_OVERRIDE_GFX_VERSION_1"
    std::string value;
    std::optional<GfxVersion> parsed;
    std::string problem;  // empty when valid
};

struct ProbeReport {
    std::vector<GpuInfo> gpus;
    std::vector<SourceReport> sources;
    std::vector<std::string> notes;  // skipped nodes, disagreements between sources
    std::vector<OverrideSetting> overrides_in_env;
    std::string rocblas_dir;  // where kernels were looked for; empty if none found
    // Whether the rocBLAS ollama-airllm would load for its prompts loads here; not tried for a replayed tree.
    struct RocblasLibrary {
        bool tried = false;
        bool loads = false;
        std::string path, version;
        std::string detail;  // why it did not load
    } rocblas_library;
    bool input_error = false;       // some input was present but unreadable or malformed
    std::string none_found_reason;  // one line when gpus is empty
};

}  // namespace probe
