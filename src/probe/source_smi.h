// Source: rocm-smi-lib, opened at run time so that rocm-probe works without it. Reads, per device:
// render minor and PCI BDF (to join with KFD, never by index), name, VRAM total/used, GTT total.
// Ignores: rsmi_dev_target_graphics_version_get (wrong for gfx1100 in ROCm 6.1-6.2; gfx comes from KFD).
// The library prints to stderr when it finds no GPU; that noise is swallowed, the status kept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "probe/gpu_info.h"

namespace probe {

struct SmiDevice {
    std::optional<int> render_minor;
    std::optional<PciAddress> address;
    std::string name;
    std::optional<std::uint64_t> unique_id;
    std::optional<std::uint64_t> vram_total;
    std::optional<std::uint64_t> vram_used;
    std::optional<std::uint64_t> gtt_total;
};

struct SmiScan {
    SourceReport report;  // used / absent (no library, init failed) / error
    std::vector<SmiDevice> devices;
};

// `library`: an explicit path, or empty to try librocm_smi64.so.1 on the loader path, then
// $ROCM_PATH/lib and /opt/rocm/lib (where Arch installs it).
SmiScan scan_smi(const std::string& library, const std::string& rocm_path);

}  // namespace probe
